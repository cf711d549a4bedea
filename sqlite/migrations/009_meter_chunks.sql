-- Meter readings in chunks (docs/METERING.md "Storage"). The current
-- versions of a series' readings move from one keyed row per reading
-- (meter_value) to one row per chunk of 300 consecutive intervals of the
-- series' resolution (five minutes of a 1-second series), the chunk's
-- readings in one blob that sqlstore encodes (sqlstore/meterchunk.go):
-- up to 300 times fewer index entries. A reading that is not in its
-- chunk's blob is absent: a gap stays a gap. meter_value_history (the
-- superseded versions, one row each) stays as it is.
--
--   meter_chunk  (series_id, chunk_s): chunk_s is the chunk's start in
--                Unix seconds, a multiple of 300 × resolution_s; rev
--                counts the chunk's writes; data the readings.
--
-- A rowid table (not WITHOUT ROWID): its rows hold blobs of a few
-- kilobytes, which a table b-tree keeps in its leaves.

CREATE TABLE meter_chunk (
    series_id INTEGER NOT NULL,
    rev       INTEGER NOT NULL,
    chunk_s   INTEGER NOT NULL,
    data      BLOB NOT NULL,
    UNIQUE (series_id, chunk_s)
);

-- The existing readings, in the text form sqlstore reads besides its
-- binary one: "T" then "slot,value,version,batch;" per reading (in any
-- order). A chunk is rewritten in the binary form the next time it
-- changes.
INSERT INTO meter_chunk (series_id, rev, chunk_s, data)
SELECT series_id, 1, chunk_s,
       CAST('T' || group_concat(((start_s - chunk_s) / resolution_s) || ',' || value || ',' || version || ',' || batch_id || ';', '') AS BLOB)
FROM (
    SELECT v.series_id, v.start_s, v.value, v.version, v.batch_id, s.resolution_s,
           v.start_s - (((v.start_s % (s.resolution_s * 300)) + s.resolution_s * 300) % (s.resolution_s * 300)) AS chunk_s
    FROM meter_value v JOIN meter_series s ON s.id = v.series_id
) r
GROUP BY series_id, chunk_s;

DROP TABLE meter_value;
