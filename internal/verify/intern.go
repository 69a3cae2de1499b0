package verify

import (
	"slices"
	"strings"
	"sync"

	"github.com/tokend/tokend"
)

// maxInterned bounds what an interner keeps: past it, it starts again
// empty, so that a store full of distinct permission lists costs a bounded
// table, not one that grows with the tokens.
const maxInterned = 4096

// interner makes the cache entries of tokens that share a value share one
// copy of it: their app id, type, access and status, their app's catalog,
// the permissions granted. A cache of a million tokens of a few apps then
// holds a few catalogs, not a million. Only cache misses use it.
type interner struct {
	mu    sync.Mutex
	strs  map[string]string
	lists map[string]*[]string
}

// known are the values every token takes from a short list: interned
// without the table or its lock.
var known = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		string(tokend.TypeStandard), string(tokend.TypePlugin),
		string(tokend.AccessReadOnly), string(tokend.AccessFull), string(tokend.AccessCustom),
		string(tokend.StatusActive), string(tokend.StatusDisabled), string(tokend.StatusRevoked),
		tokend.SystemAppID,
	} {
		m[s] = s
	}
	return m
}()

// str answers the interned copy of s.
func (in *interner) str(s string) string {
	if k, ok := known[s]; ok {
		return k
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if k, ok := in.strs[s]; ok {
		return k
	}
	if in.strs == nil || len(in.strs) >= maxInterned {
		in.strs = make(map[string]string)
	}
	in.strs[s] = s
	return s
}

// list answers the interned copy of l, which nobody may modify; nil and
// empty lists answer shared ones.
func (in *interner) list(l []string) *[]string {
	switch {
	case l == nil:
		return &noStrings
	case len(l) == 0:
		return &emptyStrings
	}
	key := strings.Join(l, "\x00")
	in.mu.Lock()
	defer in.mu.Unlock()
	if k, ok := in.lists[key]; ok && slices.Equal(*k, l) {
		return k
	}
	if in.lists == nil || len(in.lists) >= maxInterned {
		in.lists = make(map[string]*[]string)
	}
	l = l[:len(l):len(l)] // an append to it copies
	in.lists[key] = &l
	return &l
}

// noStrings and emptyStrings are the nil and the empty list of every entry;
// nobody modifies them.
var noStrings, emptyStrings = []string(nil), []string{}
