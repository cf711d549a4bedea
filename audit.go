package flexhub

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// AuditEntry is one link of the append-only, tamper-evident event log.
// Every state change appends one entry in the same transaction as the
// change. Hash covers the entry's fields and the previous entry's hash, so
// altering or removing any entry breaks every hash after it.
type AuditEntry struct {
	Seq         int64     `json:"seq"`
	At          time.Time `json:"at"`
	ActorID     string    `json:"actor_id" doc:"party that caused the change"`
	Action      string    `json:"action" doc:"e.g. resource.registered"`
	ObjectKind  string    `json:"object_kind"`
	ObjectID    string    `json:"object_id"`
	Version     int64     `json:"version" doc:"object version after the change"`
	Parties     []string  `json:"parties" doc:"parties entitled to read this entry"`
	PayloadHash string    `json:"payload_hash" doc:"SHA-256 of the object's JSON after the change"`
	PrevHash    string    `json:"prev_hash"`
	Hash        string    `json:"hash"`
}

// GenesisHash is the PrevHash of the first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ComputeHash returns the hash an entry must carry given its fields and
// PrevHash. Fields are joined with a separator that cannot occur in them
// (ids, actions and hex hashes never contain a newline).
func (e *AuditEntry) ComputeHash() string {
	h := sha256.New()
	parts := []string{
		e.PrevHash,
		strconv.FormatInt(e.Seq, 10),
		e.At.UTC().Format(time.RFC3339Nano),
		e.ActorID, e.Action, e.ObjectKind, e.ObjectID,
		strconv.FormatInt(e.Version, 10),
		strings.Join(e.Parties, ","),
		e.PayloadHash,
	}
	h.Write([]byte(strings.Join(parts, "\n")))
	return hex.EncodeToString(h.Sum(nil))
}

// PayloadHash returns the SHA-256 of v's JSON encoding.
func PayloadHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return PayloadHashOf(b)
}

// PayloadHashOf is PayloadHash of an object already encoded as JSON.
func PayloadHashOf(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// ChainReport is the result of verifying the audit chain.
type ChainReport struct {
	OK          bool   `json:"ok"`
	Entries     int64  `json:"entries" doc:"entries checked"`
	Head        string `json:"head,omitempty" doc:"hash of the last entry"`
	FirstBroken int64  `json:"first_broken,omitempty" doc:"sequence number of the first entry that fails"`
	Problem     string `json:"problem,omitempty"`
}

// ChainVerifier checks entries one by one, in sequence order.
type ChainVerifier struct {
	prev    string
	nextSeq int64
	Report  ChainReport
}

// NewChainVerifier starts a verification at the genesis.
func NewChainVerifier() *ChainVerifier {
	return &ChainVerifier{prev: GenesisHash, nextSeq: 1, Report: ChainReport{OK: true}}
}

// Add checks the next entry; it returns false once the chain is broken.
func (v *ChainVerifier) Add(e *AuditEntry) bool {
	if !v.Report.OK {
		return false
	}
	fail := func(problem string) bool {
		v.Report.OK, v.Report.FirstBroken, v.Report.Problem = false, e.Seq, problem
		return false
	}
	switch {
	case e.Seq != v.nextSeq:
		if e.Seq > v.nextSeq {
			v.Report.OK, v.Report.FirstBroken = false, v.nextSeq
			v.Report.Problem = "entry " + strconv.FormatInt(v.nextSeq, 10) + " is missing"
			return false
		}
		return fail("sequence number repeats or goes backwards")
	case e.PrevHash != v.prev:
		return fail("prev_hash does not match the hash of the entry before")
	case e.ComputeHash() != e.Hash:
		return fail("hash does not match the entry's content: the entry was altered")
	}
	v.prev, v.nextSeq = e.Hash, e.Seq+1
	v.Report.Entries++
	v.Report.Head = e.Hash
	return true
}
