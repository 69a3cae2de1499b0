// tokend customer portal: copy buttons and the create form's toggle. The
// page works without it (the form opens on a reload with an error).
"use strict";
document.addEventListener("click", (e) => {
  const copy = e.target.closest("[data-copy]");
  if (copy) {
    const el = document.getElementById(copy.dataset.copy);
    if (!el) return;
    const text = el.textContent.trim();
    const done = () => { copy.classList.add("copied"); copy.dataset.copied = text.length; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(text).then(done, () => { select(el); });
    } else {
      select(el);
    }
    return;
  }
  const toggle = e.target.closest("[data-toggle]");
  if (toggle) {
    const panel = document.getElementById(toggle.dataset.toggle);
    if (!panel) return;
    panel.hidden = !panel.hidden;
    toggle.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) { const f = panel.querySelector("input:not([type=hidden])"); if (f) f.focus(); }
  }
});
// select leaves the text selected for Ctrl+C when the clipboard is refused.
function select(el) {
  const r = document.createRange();
  r.selectNodeContents(el);
  const s = window.getSelection();
  s.removeAllRanges();
  s.addRange(r);
}

// [data-when="name=value"] shows an element only while the form's control
// of that name has that value (the expiry date, the custom permissions).
function syncWhen() {
  for (const el of document.querySelectorAll("[data-when]")) {
    const [name, value] = el.dataset.when.split("=");
    const form = el.closest("form");
    const checked = form && form.querySelector("[name='" + name + "']:checked");
    const control = checked || (form && form.querySelector("select[name='" + name + "']"));
    el.hidden = !control || control.value !== value;
  }
}
document.addEventListener("change", syncWhen);
syncWhen();
