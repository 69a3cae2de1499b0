//go:build race

package verify

// raceEnabled: the race detector changes how much memory everything takes,
// so heap measurements are meaningless under it.
const raceEnabled = true
