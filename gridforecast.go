package flexhub

import (
	"context"
	"math"
	"time"
)

// Grid forecasts (docs/GRID_FORECASTS.md): a system operator's forecast
// of the operating state of its grid model over a run of 15-minute
// intervals — the loads and generation the power flow of each interval
// takes. The traffic light, the flexibility needs and the hosting
// capacity of a grid prequalification are computed on these states.
//
// Each interval's state starts from the grid model's own loads and
// generators, scaled by the interval's load and generation percentages
// (100 when not given), and then takes, at every bus a series names (by
// bus, or by connection point through the model's mapping), the series'
// load and generation instead of the model's there. Reactive power
// follows active power at the bus's base power factor (none where the
// model has no load there).

// GridForecastSpec is what the system operator sends.
type GridForecastSpec struct {
	Start     time.Time `json:"start" doc:"start of the first interval, ISO 8601 UTC, on a quarter hour"`
	Intervals int       `json:"intervals" minimum:"1" maximum:"672" doc:"how many consecutive 15-minute intervals (at most 7 days)"`
	// LoadScalePercent and GenerationScalePercent scale the model's loads
	// and generators per interval (length Intervals, or empty for 100).
	LoadScalePercent       []float64            `json:"load_scale_percent,omitempty" doc:"per interval: the model's loads at this percentage (empty: 100)"`
	GenerationScalePercent []float64            `json:"generation_scale_percent,omitempty" doc:"per interval: the model's generators at this percentage (empty: 100)"`
	Series                 []GridForecastSeries `json:"series,omitempty" maxItems:"20000" doc:"forecasts at buses or connection points, replacing the model's loads and generation there"`
	Description            string               `json:"description,omitempty" maxLength:"4000"`
}

// GridForecastSeries is the forecast at one bus or connection point.
type GridForecastSeries struct {
	BusID             string    `json:"bus_id,omitempty" doc:"a bus of the grid model; or give connection_point_id"`
	ConnectionPointID string    `json:"connection_point_id,omitempty" doc:"a connection point mapped to a bus of the grid model"`
	Unit              string    `json:"unit" enum:"W,kW,MW" doc:"unit of load and generation"`
	Load              []float64 `json:"load,omitempty" doc:"per interval: mean consumption (length intervals)"`
	Generation        []float64 `json:"generation,omitempty" doc:"per interval: mean generation (length intervals)"`
}

// GridForecast is a stored forecast for one grid model version.
type GridForecast struct {
	ID          string `json:"id" readOnly:"true"`
	GridModelID string `json:"grid_model_id" readOnly:"true"`
	GridAreaID  string `json:"grid_area_id" readOnly:"true"`
	GridForecastSpec
	End          time.Time `json:"end" readOnly:"true" doc:"end of the last interval"`
	ModelVersion int64     `json:"model_version" readOnly:"true"`
	// States summarises each interval's power flow: where the grid is
	// tight and which limits it breaks, ahead of time.
	States    []GridStateSummary `json:"states" readOnly:"true" doc:"per interval: the power flow's extremes and its violations"`
	CreatedBy string             `json:"created_by" readOnly:"true"`
	Version   int64              `json:"version" readOnly:"true"`
	CreatedAt time.Time          `json:"created_at" readOnly:"true"`
}

// GridStateSummary is one interval's operating state in brief.
type GridStateSummary struct {
	Start             time.Time `json:"start"`
	MinVmPU           float64   `json:"min_vm_pu"`
	MinVmBus          string    `json:"min_vm_bus"`
	MaxVmPU           float64   `json:"max_vm_pu"`
	MaxVmBus          string    `json:"max_vm_bus"`
	MaxLoadingPercent float64   `json:"max_loading_percent"`
	MaxLoadingElement string    `json:"max_loading_element,omitempty"`
	NetLoadMW         float64   `json:"net_load_mw" doc:"consumption minus generation of all buses"`
	Violations        []string  `json:"violations,omitempty" doc:"each broken limit, worst first, e.g. bus 18 undervoltage 0.884 p.u. (limit 0.9)"`
}

// GridForecastStep is the length of a forecast interval.
const GridForecastStep = 15 * time.Minute

var forecastUnitMW = map[string]float64{"W": 1e-6, "kW": 1e-3, "MW": 1}

// Validate checks the forecast on its own (the buses and connection
// points it names are the service's check) and normalises it.
func (s *GridForecastSpec) Validate() error {
	s.Start = s.Start.UTC()
	if s.Start.IsZero() {
		return FieldErrorf("start", "a forecast needs its start")
	}
	if s.Start.UnixNano()%int64(GridForecastStep) != 0 {
		return RuleErrorf(EInvalid, "grid_forecast.start", "start", "%s is not on a quarter hour", s.Start.Format(time.RFC3339))
	}
	if s.Intervals < 1 || s.Intervals > 672 {
		return FieldErrorf("intervals", "%d intervals: give 1 to 672 (7 days)", s.Intervals)
	}
	for f, xs := range map[string][]float64{"load_scale_percent": s.LoadScalePercent, "generation_scale_percent": s.GenerationScalePercent} {
		if len(xs) == 0 {
			continue
		}
		if len(xs) != s.Intervals {
			return RuleErrorf(EInvalid, "grid_forecast.length", f, "%d values for %d intervals", len(xs), s.Intervals)
		}
		for i, x := range xs {
			if math.IsNaN(x) || x < 0 || x > 1000 {
				return FieldErrorf(fieldIndex(f, i), "%v %% is not a scale: give 0 to 1000", x)
			}
		}
	}
	seen := map[string]bool{}
	for i, sr := range s.Series {
		f := fieldIndex("series", i)
		if (sr.BusID == "") == (sr.ConnectionPointID == "") {
			return RuleErrorf(EInvalid, "grid_forecast.where", f, "give either bus_id or connection_point_id")
		}
		key := "bus:" + sr.BusID
		if sr.ConnectionPointID != "" {
			key = "cp:" + sr.ConnectionPointID
		}
		if seen[key] {
			return RuleErrorf(EInvalid, "grid_forecast.where", f, "%s %s has two series", map[bool]string{true: "bus", false: "connection point"}[sr.BusID != ""], sr.BusID+sr.ConnectionPointID)
		}
		seen[key] = true
		if _, ok := forecastUnitMW[sr.Unit]; !ok {
			return FieldErrorf(f+".unit", "%q is not a power unit: use W, kW or MW", sr.Unit)
		}
		if len(sr.Load) == 0 && len(sr.Generation) == 0 {
			return RuleErrorf(EInvalid, "grid_forecast.length", f, "a series gives load, generation or both")
		}
		for g, xs := range map[string][]float64{"load": sr.Load, "generation": sr.Generation} {
			if len(xs) == 0 {
				continue
			}
			if len(xs) != s.Intervals {
				return RuleErrorf(EInvalid, "grid_forecast.length", f+"."+g, "%d values for %d intervals", len(xs), s.Intervals)
			}
			for k, x := range xs {
				if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
					return FieldErrorf(fieldIndex(f+"."+g, k), "%v is not a power: give a number of %s, not negative", x, sr.Unit)
				}
			}
		}
	}
	return nil
}

// MW converts a series value to MW.
func (sr *GridForecastSeries) MW(x float64) float64 { return x * forecastUnitMW[sr.Unit] }

// Until is the end of the forecast's last interval.
func (s *GridForecastSpec) Until() time.Time {
	return s.Start.Add(time.Duration(s.Intervals) * GridForecastStep)
}

// GridForecastTx stores forecasts, written once.
type GridForecastTx interface {
	CreateGridForecast(ctx context.Context, f *GridForecast) error
	GridForecast(ctx context.Context, id string) (*GridForecast, error)
	// ListGridForecasts lists a grid model's forecasts, oldest first.
	ListGridForecasts(ctx context.Context, gridModelID string, pg Page) ([]*GridForecast, string, error)
	// GridForecastAt returns the newest forecast of a grid model that
	// covers the instant, ENotFound if none does.
	GridForecastAt(ctx context.Context, gridModelID string, at time.Time) (*GridForecast, error)
}

// KindGridForecast is the audit kind of forecasts.
const KindGridForecast = "grid_forecast"
