package auditchain

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"
)

// TestSumKnownAnswer pins the version 1 layout to a hash computed outside
// Go, by the Python recipe of docs/operations.md: a change to the layout
// would make every chain ever written fail to verify.
func TestSumKnownAnswer(t *testing.T) {
	details, err := Canonical([]byte(`{ "b": {"<": ">"}, "a": [1, 2.50, "\u00e9\u0000"] }`))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[1,2.50,"é\u0000"],"b":{"<":">"}}`; string(details) != want {
		t.Fatalf("Canonical = %s, want %s (keys sorted, numbers as written, no HTML escaping)", details, want)
	}
	r := Row{ID: 42, Time: time.Date(2026, 3, 14, 10, 26, 53, 589793000, time.FixedZone("CET", 3600)),
		Actor: "token:tok_1", ActorName: "Ann <ops> & co", IP: "192.0.2.7", Action: "token.create",
		AppID: "app_1", TokenID: "tok_2", Details: details}
	got := hex.EncodeToString(Sum(bytes.Repeat([]byte{0x11}, 32), r))
	if want := "7054ebb76bdf0aa166deec5ca5b444e0ab60b9662631d2795cc44ff295d7683e"; got != want {
		t.Fatalf("Sum = %s, want %s", got, want)
	}
}

func TestCanonicalRefusesWhatIsNotJSON(t *testing.T) {
	if _, err := Canonical([]byte(`{"a":`)); err == nil {
		t.Fatal("Canonical accepted a truncated document")
	}
}

func TestCheckpointSignature(t *testing.T) {
	key := Key([]byte("a pepper of at least thirty-two characters"))
	cp := Checkpoint{Pos: 7, Hash: bytes.Repeat([]byte{1}, 32), Time: time.Unix(100, 0), CutAt: time.Unix(200, 0)}
	cp.MAC = cp.Sign(key)
	if !cp.Signed(key) {
		t.Fatal("a checkpoint does not verify under its own key")
	}
	if cp.Signed(Key([]byte("another pepper of at least thirty-two characters"))) {
		t.Error("a checkpoint verifies under another pepper's key")
	}
	for name, change := range map[string]func(*Checkpoint){
		"position": func(c *Checkpoint) { c.Pos++ },
		"hash":     func(c *Checkpoint) { c.Hash = bytes.Repeat([]byte{2}, 32) },
		"time":     func(c *Checkpoint) { c.Time = c.Time.Add(time.Microsecond) },
		"cut time": func(c *Checkpoint) { c.CutAt = c.CutAt.Add(time.Hour) },
	} {
		c := cp
		change(&c)
		if c.Signed(key) {
			t.Errorf("a checkpoint with another %s still verifies", name)
		}
	}
}
