package flexhub

// MeterTx is the part of Tx that stores meter data (see the metering
// issue's design in docs/METERING.md).
type MeterTx interface{}
