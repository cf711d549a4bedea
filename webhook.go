package flexhub

// WebhookTx is the part of Tx that stores webhook endpoints and deliveries.
type WebhookTx interface{}
