package flexhub

// ActivationTx is the part of Tx that stores activation orders.
type ActivationTx interface{}
