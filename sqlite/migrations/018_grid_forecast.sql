-- Grid forecasts (docs/GRID_FORECASTS.md): a DSO's forecast of the
-- operating state of one grid model version over a run of 15-minute
-- intervals. Written once (a revision is a new forecast; the newest
-- covering an instant wins), so no history rows.

CREATE TABLE grid_forecast (
    id            TEXT PRIMARY KEY,
    version       INTEGER NOT NULL,
    grid_model_id TEXT NOT NULL REFERENCES grid_model(id),
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    body          TEXT NOT NULL
);
CREATE INDEX grid_forecast_model ON grid_forecast(grid_model_id, start_at);
