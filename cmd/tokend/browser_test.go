package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// browser is one tab of a headless Chromium, driven through the DevTools
// protocol, for the dashboard's end-to-end tests. It records the console
// errors, uncaught exceptions and browser log errors of the tab; check turns
// them into test failures, because a page that works "except for an error in
// the console" does not work.
type browser struct {
	ctx   context.Context
	base  string // the dashboard's URL, without a trailing slash
	shots string // where screenshots go

	mu       sync.Mutex
	problems []string // console errors, exceptions and log errors not yet checked
	notes    []string // warnings, reported but not failed on
}

// chromiumPath finds the browser: $TOKEND_CHROMIUM, else chromium on PATH
// (Debian's package installs /usr/bin/chromium).
func chromiumPath() string {
	if p := os.Getenv("TOKEND_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// actionTimeout bounds one browser step, so that a missing element fails the
// test with its selector rather than hanging it until go test gives up. It
// is no performance bound: a loaded CI machine must not make it flaky.
const actionTimeout = 30 * time.Second

// newBrowser starts Chromium with a fresh profile and opens a tab. Without
// Chromium the test is skipped, except under CI=true where it fails.
func newBrowser(t *testing.T, base, shots string) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		msg := "chromium not found (apt-get install chromium, or set TOKEND_CHROMIUM to the browser's path)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, stopAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{base: strings.TrimSuffix(base, "/"), shots: shots}
	ctx, stopTab := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() {
		stopTab()
		stopAlloc()
	})
	b.ctx = ctx
	// The first Do starts the browser and opens the tab, which live as long
	// as its context: so that context may carry no timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	if v, err := exec.Command(path, "--version").Output(); err == nil {
		t.Logf("browser: %s", strings.TrimSpace(string(v)))
	}
	return b
}

// listen runs in the tab's event loop: it only records.
func (b *browser) listen(ev any) {
	var problem, note string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			switch {
			case len(a.Value) > 0:
				args = append(args, string(a.Value))
			case a.Description != "":
				args = append(args, a.Description)
			default:
				args = append(args, string(a.Type))
			}
		}
		text := fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		switch ev.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeAssert:
			problem = text
		case runtime.ConsoleAPICalledTypeWarning:
			note = text
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		problem = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, text)
	case *log.EventEntryAdded:
		e := ev.Entry
		text := fmt.Sprintf("log %s/%s: %s", e.Source, e.Level, e.Text)
		if e.URL != "" {
			text += " (" + e.URL + ")"
		}
		switch e.Level {
		case log.EntryLevelError:
			problem = text
		case log.EntryLevelWarning:
			note = text
		}
	}
	if problem == "" && note == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if problem != "" {
		b.problems = append(b.problems, problem)
	}
	if note != "" {
		b.notes = append(b.notes, note)
	}
}

// check fails the test for every console error, exception and log error
// recorded since the last check, except those containing one of the
// expected substrings (an answer the test provoked on purpose, such as a
// 403 to a forged request). Warnings are logged.
func (b *browser) check(t *testing.T, expected ...string) {
	t.Helper()
	b.mu.Lock()
	problems, notes := b.problems, b.notes
	b.problems, b.notes = nil, nil
	b.mu.Unlock()
	for _, n := range notes {
		t.Logf("browser warning: %s", n)
	}
next:
	for _, p := range problems {
		for _, e := range expected {
			if strings.Contains(p, e) {
				t.Logf("expected browser error: %s", p)
				continue next
			}
		}
		t.Errorf("browser: %s", p)
	}
}

// run runs steps in the tab, failing the test with what was being done.
func (b *browser) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that answers a value.
func get[T any](t *testing.T, b *browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page (awaiting a promise).
func eval[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	return get(t, b, "evaluating "+js, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
}

// navigate runs steps that load a page (a click on a link or a submit
// button) and waits for it; it answers the HTTP status of the document
// the browser ended on.
func (b *browser) navigate(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	res, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if res == nil {
		return 0
	}
	return res.Status
}

// open loads a dashboard path and fails unless it answers want.
func (b *browser) open(t *testing.T, path string, want int64) {
	t.Helper()
	res := get(t, b, "opening "+path, chromedp.NavigateResponse(b.base+path))
	if res == nil {
		t.Fatalf("GET %s: no response", path)
	}
	if res.Status != want {
		t.Fatalf("GET %s = %d %s, want %d", path, res.Status, res.StatusText, want)
	}
}

// location answers the path (and query) of the page the tab shows.
func (b *browser) location(t *testing.T) string {
	t.Helper()
	u := get(t, b, "reading the location", chromedp.Location())
	return strings.TrimPrefix(u, b.base)
}

// exists reports whether a CSS selector matches an element now (no wait).
func (b *browser) exists(t *testing.T, sel string) bool {
	t.Helper()
	return eval[bool](t, b, fmt.Sprintf("document.querySelector(%q) !== null", sel))
}

// visible reports whether a CSS selector matches an element that is rendered
// (not hidden, not in a closed dialog or details).
func (b *browser) visible(t *testing.T, sel string) bool {
	t.Helper()
	return eval[bool](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%q);
		return e !== null && e.checkVisibility({visibilityProperty: true}) })()`, sel))
}

// text answers the visible text of the first element matching sel, waiting
// for it to be there.
func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	return strings.TrimSpace(get(t, b, "reading "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// fill sets the form fields named in values, inside the element matching
// form, in one step, and fires the input and change events a person's
// editing would: a text field gets the value, a select the option, a radio
// group the radio with that value, a checkbox "on" or "off". Use typeInto
// where the keystrokes themselves matter.
func (b *browser) fill(t *testing.T, form string, values map[string]string) {
	t.Helper()
	js, _ := json.Marshal(values)
	missing := eval[[]string](t, b, fmt.Sprintf(`((form, values) => {
		const f = document.querySelector(form), missing = [];
		for (const [name, v] of Object.entries(values)) {
			const all = f === null ? [] : [...f.querySelectorAll("[name=" + CSS.escape(name) + "]")];
			let e = all[0];
			if (e && e.type === "radio") e = all.find(r => r.value === v);
			if (!e) { missing.push(name); continue }
			if (e.type === "radio") e.checked = true;
			else if (e.type === "checkbox") e.checked = v === "on";
			else e.value = v;
			e.dispatchEvent(new Event("input", {bubbles: true}));
			e.dispatchEvent(new Event("change", {bubbles: true}));
		}
		return missing })(%q, %s)`, form, js))
	if len(missing) > 0 {
		t.Fatalf("%s has no field for %v", form, missing)
	}
}

// typeInto clears a text field and types v into it key by key.
func (b *browser) typeInto(t *testing.T, sel, v string) {
	t.Helper()
	eval[bool](t, b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (e) e.value = ""; return e !== null })()`, sel))
	b.run(t, "typing into "+sel, chromedp.SendKeys(chromedp.CSS(sel), v))
}

// shot saves a full-page screenshot as <name>.png in the screenshot
// directory.
func (b *browser) shot(t *testing.T, name string) {
	t.Helper()
	png := get(t, b, "screenshot "+name, chromedp.FullScreenshot(100))
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// screenshotDir makes the directory the run's screenshots go to. Asked for
// with $TOKEND_SCREENSHOTS, it is that directory, which outlives the test so
// that a person can look at them; otherwise the test's own temporary
// directory, removed with it: `go test ./...` leaves nothing behind.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("TOKEND_SCREENSHOTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// steps runs subtests in order. A step that fails stops the walk, since
// the steps after it need the state it leaves; a check (also) only reports.
type steps struct {
	t      *testing.T
	b      *browser
	failed bool
}

func (s *steps) run(name string, f func(t *testing.T)) {
	s.t.Helper()
	if !s.also(name, f) {
		s.failed = true
	}
}

// also runs a step whose failure leaves the state the next steps need.
func (s *steps) also(name string, f func(t *testing.T)) bool {
	s.t.Helper()
	if s.failed {
		return false
	}
	return s.t.Run(name, func(t *testing.T) {
		defer s.b.check(t)
		f(t)
	})
}

// clickText clicks the rendered button, link or summary inside scope whose
// text is text (spaces trimmed), the way a person picks a control by its
// label. It fails when none or several match.
func (b *browser) clickText(t *testing.T, scope, text string) {
	t.Helper()
	b.markText(t, scope, text)
	b.run(t, "clicking "+text, chromedp.Click(chromedp.CSS("[data-e2e-target]")))
}

// clickTextAndWait clicks like clickText and waits for the page it loads; it
// answers the HTTP status of that page.
func (b *browser) clickTextAndWait(t *testing.T, scope, text string) int64 {
	t.Helper()
	b.markText(t, scope, text)
	return b.navigate(t, "clicking "+text, chromedp.Click(chromedp.CSS("[data-e2e-target]")))
}

// markText marks the one control clickText means with data-e2e-target.
func (b *browser) markText(t *testing.T, scope, text string) {
	t.Helper()
	n := eval[int](t, b, fmt.Sprintf(`(() => {
		for (const e of document.querySelectorAll("[data-e2e-target]")) e.removeAttribute("data-e2e-target");
		const all = [...document.querySelectorAll(%q + " :is(button, a, summary, input[type=submit])")]
			.filter(e => (e.innerText || e.value || "").trim() === %q && e.checkVisibility({visibilityProperty: true}));
		if (all.length === 1) all[0].setAttribute("data-e2e-target", "");
		return all.length })()`, scope, text))
	if n != 1 {
		t.Fatalf("%d visible controls in %s read %q, want 1", n, scope, text)
	}
}

// keys are the keys press knows: the DOM key name, its Windows key code, and
// the text a keydown of it carries.
var keys = map[string]struct {
	code int64
	text string
}{
	"Tab": {9, ""}, "Enter": {13, "\r"}, "Escape": {27, ""}, " ": {32, " "},
}

// press presses and releases a key on the focused element, as a keyboard
// does: the keydown carries the key's text, which is what makes Enter
// follow a focused link or press a focused button.
func (b *browser) press(t *testing.T, key string) {
	t.Helper()
	k, ok := keys[key]
	if !ok {
		t.Fatalf("press: unknown key %q", key)
	}
	code := key
	if key == " " {
		code = "Space"
	}
	down := input.DispatchKeyEventParams{
		Type: input.DispatchKeyEventTypeKeyDown, Key: key, Code: code,
		WindowsVirtualKeyCode: k.code, NativeVirtualKeyCode: k.code, Text: k.text, UnmodifiedText: k.text,
	}
	if k.text == "" {
		down.Type = input.DispatchKeyEventTypeRawKeyDown
	}
	up := down
	up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
	b.run(t, "pressing "+key, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		for _, p := range []input.DispatchKeyEventParams{down, up} {
			if _, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	}))
}
