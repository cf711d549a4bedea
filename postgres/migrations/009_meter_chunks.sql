-- Meter readings in chunks (docs/METERING.md "Storage"). The current
-- versions of a series' readings move from one keyed row per reading
-- (meter_value) to one row per chunk of 300 consecutive intervals of the
-- series' resolution (five minutes of a 1-second series), the chunk's
-- readings in one blob that sqlstore encodes (sqlstore/meterchunk.go):
-- up to 300 times fewer index entries and tuple headers. A reading that
-- is not in its chunk's blob is absent: a gap stays a gap.
-- meter_value_history (the superseded versions, one row each) stays as
-- it is.
--
--   meter_chunk  (series_id, chunk_s): chunk_s is the chunk's start in
--                Unix seconds, a multiple of 300 × resolution_s; rev
--                counts the chunk's writes (a write checks the revision
--                it read, so concurrent writers cannot lose a version);
--                data the readings.
--
-- The chunk blobs stay inline up to a page (toast_tuple_target): a
-- chunk is read and written whole, and moving it out of line would add a
-- TOAST row and index entry per write.

CREATE TABLE meter_chunk (
    series_id INTEGER NOT NULL,
    rev       INTEGER NOT NULL,
    chunk_s   BIGINT NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (series_id, chunk_s)
) WITH (toast_tuple_target = 8160);

ALTER TABLE meter_chunk ALTER COLUMN data SET STORAGE EXTERNAL;

-- The existing readings, in the text form sqlstore reads besides its
-- binary one: "T" then "slot,value,version,batch;" per reading. A chunk
-- is rewritten in the binary form the next time it changes.
INSERT INTO meter_chunk (series_id, rev, chunk_s, data)
SELECT series_id, 1, chunk_s,
       convert_to('T' || string_agg(((start_s - chunk_s) / resolution_s) || ',' || value || ',' || version || ',' || batch_id || ';', '' ORDER BY start_s), 'UTF8')
FROM (
    SELECT v.series_id, v.start_s, v.value, v.version, v.batch_id, s.resolution_s,
           v.start_s - (((v.start_s % (s.resolution_s * 300)) + s.resolution_s * 300) % (s.resolution_s * 300)) AS chunk_s
    FROM meter_value v JOIN meter_series s ON s.id = v.series_id
) r
GROUP BY series_id, chunk_s;

DROP TABLE meter_value;
