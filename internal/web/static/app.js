// tokend dashboard: small progressive enhancements. Every page works
// without this file: dialogs fall back to their own pages, filters to a
// submit button, copy buttons to selecting the text by hand.
"use strict";

(function () {
  const canDialog = typeof HTMLDialogElement === "function" &&
    typeof HTMLDialogElement.prototype.showModal === "function";

  function announce(text) {
    const live = document.getElementById("live");
    if (!live) return;
    live.textContent = "";
    // A change of text is what screen readers announce.
    window.setTimeout(function () { live.textContent = text; }, 50);
  }

  function openDialog(dialog) {
    if (!canDialog) return false;
    if (dialog.open) dialog.close();
    dialog.showModal();
    // The first field in error, else the first field, else the main button:
    // tried in that order (one selector list would pick whichever comes first
    // in the document, such as the close button).
    const wanted = ["[aria-invalid=true]", "input:not([type=hidden]):not([readonly])", "select", "textarea", "button.primary", "button"];
    for (const sel of wanted) {
      const el = dialog.querySelector(sel);
      if (el) { el.focus(); break; }
    }
    return true;
  }

  // Links and buttons that open a <dialog>; without JS they lead to a page.
  document.addEventListener("click", function (ev) {
    // A row menu's button opens it here rather than by default, so that it
    // is placed (see placeMenu) before anything sees it; others close.
    const menuButton = ev.target.closest("details.menu > summary");
    if (menuButton) {
      const menu = menuButton.parentElement;
      ev.preventDefault();
      document.querySelectorAll("details.menu[open]").forEach(function (m) { if (m !== menu) m.open = false; });
      menu.open = !menu.open;
      if (menu.open) placeMenu(menu);
      return;
    }
    const opener = ev.target.closest("[data-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.getAttribute("data-dialog"));
      if (dialog && openDialog(dialog)) {
        ev.preventDefault();
        const menu = opener.closest("details.menu");
        if (menu) menu.open = false;
      }
      return;
    }
    const confirmer = ev.target.closest("a[data-confirm]");
    if (confirmer && canDialog) {
      ev.preventDefault();
      const menu = confirmer.closest("details.menu");
      if (menu) menu.open = false;
      openConfirm(confirmer);
      return;
    }
    const opensDetails = ev.target.closest("[data-open-details]");
    if (opensDetails) {
      const panel = document.getElementById(opensDetails.getAttribute("data-open-details"));
      if (panel && panel.tagName === "DETAILS") {
        ev.preventDefault();
        panel.open = true;
        panel.scrollIntoView({ block: "start" });
        const first = panel.querySelector("input:not([type=hidden]), select, textarea");
        if (first) first.focus({ preventScroll: true });
      }
      return;
    }
    const closer = ev.target.closest("[data-close]");
    if (closer) {
      const dialog = closer.closest("dialog");
      if (dialog) {
        ev.preventDefault();
        dialog.close();
      }
      return;
    }
    const copier = ev.target.closest("[data-copy], [data-copy-text]");
    if (copier) {
      ev.preventDefault();
      copy(copier);
      return;
    }
    // A click elsewhere closes open action menus.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(ev.target)) menu.open = false;
    });
  });

  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.open = false;
      const summary = menu.querySelector("summary");
      if (summary) summary.focus();
    });
  });

  // An open row menu is placed within the window: below its button, or
  // above it when there is no room below, never past either side. Fixed,
  // it escapes a table that scrolls sideways; it follows its button as the
  // page scrolls and closes when the button leaves the window. Until placed
  // it stays hidden, so it never shows where it does not fit.
  document.documentElement.classList.add("js-menus");
  function placeMenu(menu) {
    const list = menu.querySelector("ul"), button = menu.querySelector("summary");
    if (!list || !button) return;
    const b = button.getBoundingClientRect();
    const vw = document.documentElement.clientWidth, vh = window.innerHeight, gap = 8;
    if (b.bottom < 0 || b.top > vh) {
      menu.open = false;
      return;
    }
    list.classList.add("placed");
    const w = list.offsetWidth, h = list.offsetHeight;
    let top = b.bottom + 4;
    if (top + h > vh - gap) top = b.top - 4 - h >= gap ? b.top - 4 - h : Math.max(gap, vh - gap - h);
    list.style.left = Math.max(gap, Math.min(b.right - w, vw - gap - w)) + "px";
    list.style.top = top + "px";
  }
  document.addEventListener("toggle", function (ev) {
    const menu = ev.target;
    if (!(menu instanceof HTMLDetailsElement) || !menu.matches("details.menu")) return;
    if (menu.open) placeMenu(menu);
    else {
      const list = menu.querySelector("ul");
      if (list) list.classList.remove("placed");
    }
  }, true);
  const placeOpenMenus = function () { document.querySelectorAll("details.menu[open]").forEach(placeMenu); };
  window.addEventListener("scroll", placeOpenMenus, {capture: true, passive: true});
  window.addEventListener("resize", placeOpenMenus);

  // Copy buttons: data-copy names an input whose value is copied,
  // data-copy-text holds the text itself.
  function copy(button) {
    let text = button.getAttribute("data-copy-text");
    let source = null;
    if (text === null) {
      source = document.getElementById(button.getAttribute("data-copy"));
      if (!source) return;
      // An input's value, or the text of a snippet (<pre>).
      if (typeof source.value === "string") {
        text = source.value;
      } else {
        text = source.textContent;
        source = null;
      }
    }
    const done = function () {
      const label = button.getAttribute("data-copied") || "Copied";
      announce(label + ".");
      button.classList.add("copied");
      window.setTimeout(function () { button.classList.remove("copied"); }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(text, source, done); });
    } else {
      fallbackCopy(text, source, done);
    }
  }

  // Outside a secure context (plain HTTP on a LAN address) the clipboard
  // API is missing: copy through a selection instead.
  function fallbackCopy(text, source, done) {
    let el = source;
    let temp = null;
    if (!el) {
      temp = document.createElement("textarea");
      temp.value = text;
      temp.setAttribute("readonly", "");
      temp.className = "offscreen";
      document.body.appendChild(temp);
      el = temp;
    }
    el.focus();
    el.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    if (temp) temp.remove();
    if (ok) done(); else announce("Press Ctrl+C or Cmd+C to copy.");
  }

  // The secret of a new or rotated token opens as a modal dialog.
  document.querySelectorAll("dialog[data-autoshow]").forEach(function (dialog) {
    if (!canDialog) return;
    dialog.close();
    dialog.showModal();
    if (dialog.hasAttribute("data-guard")) guard(dialog);
    const secret = dialog.querySelector("input[readonly]");
    if (secret) {
      secret.focus();
      secret.select();
    }
  });

  // A guarded dialog (the secret shown once) does not close on Escape or a
  // click outside it: it asks first, since what it shows is gone once it
  // closes. Only its own buttons close it.
  function guard(dialog) {
    const ask = dialog.querySelector("[data-ask]");
    if (!ask) return;
    let leaving = false;
    const askNow = function () {
      ask.hidden = false;
      const stay = ask.querySelector("[data-ask-stay]");
      if (stay) stay.focus();
      announce("You will not see this secret again.");
    };
    dialog.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && !leaving) {
        ev.preventDefault();
        ev.stopPropagation();
        askNow();
      }
    });
    dialog.addEventListener("cancel", function (ev) {
      if (!leaving) {
        ev.preventDefault();
        askNow();
      }
    });
    // A browser may close a dialog on Escape without a cancelable event
    // (no user activation yet): open it again and ask.
    // (The close of its first showing arrives late, while it is open.)
    dialog.addEventListener("close", function () {
      if (!leaving && !dialog.open) {
        dialog.showModal();
        askNow();
      }
    });
    dialog.addEventListener("click", function (ev) {
      if (ev.target !== dialog || leaving) return;
      const r = dialog.getBoundingClientRect();
      const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
      if (!inside) askNow();
    });
    dialog.querySelectorAll("[data-ack], [data-ask-close]").forEach(function (b) {
      b.addEventListener("click", function () {
        leaving = true;
        if (b.hasAttribute("data-ask-close")) dialog.close();
      });
    });
    const stay = ask.querySelector("[data-ask-stay]");
    if (stay) {
      stay.addEventListener("click", function () {
        ask.hidden = true;
        const secret = dialog.querySelector("input[readonly]");
        if (secret) secret.focus();
      });
    }
  }

  // Links with data-confirm (row menus, the users page) open their
  // confirmation page's form in a dialog, the same one the token page
  // shows; without JavaScript, or if the page cannot be fetched, they lead
  // to that page.
  function openConfirm(link) {
    const go = function () { window.location.href = link.href; };
    fetch(link.href, {credentials: "same-origin", headers: {"Accept": "text/html"}}).then(function (res) {
      if (!res.ok || new URL(res.url).pathname !== new URL(link.href).pathname) return go();
      return res.text().then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const form = doc.querySelector("main form.confirm-form");
        const title = doc.querySelector("main h1");
        if (!form) return go();
        let dialog = document.getElementById("confirm-dialog");
        if (!dialog) {
          dialog = document.createElement("dialog");
          dialog.id = "confirm-dialog";
          dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
          dialog.setAttribute("data-testid", "confirm-dialog");
          const head = document.createElement("div");
          head.className = "dialog-head";
          const h = document.createElement("h2");
          h.id = "confirm-dialog-title";
          const x = document.createElement("button");
          x.type = "button";
          x.className = "icon";
          x.setAttribute("data-close", "");
          x.setAttribute("aria-label", "Close");
          x.textContent = "×";
          head.append(h, x);
          const body = document.createElement("div");
          body.className = "confirm-body";
          dialog.append(head, body);
          document.body.appendChild(dialog);
        }
        dialog.querySelector("h2").textContent = title ? title.textContent.trim() : link.textContent.trim();
        const adopted = document.adoptNode(form);
        // Cancel closes the dialog instead of leaving the page.
        adopted.querySelectorAll(".actions a.button").forEach(function (a) { a.setAttribute("data-close", ""); });
        dialog.querySelector(".confirm-body").replaceChildren(adopted);
        wireMatch(adopted);
        openDialog(dialog);
      });
    }).catch(go);
  }

  // A link to a collapsed panel (/tokens/{id}#edit) opens it.
  if (location.hash.length > 1) {
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target && target.tagName === "DETAILS") target.open = true;
  }

  // A form that came back with problems: focus its first invalid field
  // (a form in a dialog is focused when its dialog opens).
  const invalid = document.querySelector("main form [aria-invalid=true]");
  if (invalid && !invalid.closest("dialog")) invalid.focus();

  // Live character counters.
  document.querySelectorAll("[data-counter-for]").forEach(function (counter) {
    const input = document.getElementById(counter.getAttribute("data-counter-for"));
    const max = parseInt(counter.getAttribute("data-max"), 10);
    if (!input) return;
    const update = function () {
      const n = Array.from(input.value).length;
      counter.textContent = n + "/" + max;
      counter.classList.toggle("over", n > max);
    };
    input.addEventListener("input", update);
    update();
  });

  // Parts of a form shown only for some choices: data-show-when="name=value",
  // and permission lists only for the chosen application (data-app).
  function refreshForm(form, changed) {
    const appSelect = form.querySelector("[data-app-select]");
    // A field required for some choices (origins for a plugin token):
    // required then, and its collapsed section opens when the choice is made.
    form.querySelectorAll("[data-required-when]").forEach(function (el) {
      const rule = el.getAttribute("data-required-when").split("=");
      const field = form.elements.namedItem(rule[0]);
      const on = !!field && field.value === rule[1];
      el.required = on;
      const section = el.closest("details");
      if (on && section && changed && changed.name === rule[0]) section.open = true;
    });
    // The expiry choices the chosen application allows: none longer than
    // its maximum token lifetime, and no "No expiration" when it has one.
    const expiry = form.querySelector("[data-expiry-select]");
    if (appSelect && expiry && appSelect.selectedOptions.length) {
      const max = parseInt(appSelect.selectedOptions[0].getAttribute("data-max-seconds") || "0", 10);
      let best = null;
      Array.from(expiry.options).forEach(function (opt) {
        let allowed = true;
        if (max > 0 && opt.hasAttribute("data-unlimited")) allowed = false;
        const secs = parseInt(opt.getAttribute("data-seconds") || "0", 10);
        if (max > 0 && secs > max) allowed = false;
        opt.hidden = !allowed;
        opt.disabled = !allowed;
        if (allowed && secs > 0) best = opt;
      });
      if (expiry.selectedOptions.length === 0 || expiry.selectedOptions[0].disabled) {
        expiry.value = best ? best.value : "custom";
      }
      const date = form.querySelector("input[type=date][name=expires_on]");
      if (date) {
        if (max > 0) {
          const last = new Date(Date.now() + max * 1000);
          date.max = last.toISOString().slice(0, 10);
        } else {
          date.removeAttribute("max");
        }
      }
    }
    form.querySelectorAll("[data-show-when]").forEach(function (el) {
      const rule = el.getAttribute("data-show-when").split("=");
      const field = form.elements.namedItem(rule[0]);
      let value = "";
      if (field instanceof RadioNodeList) value = field.value;
      else if (field) value = field.value;
      let show = value === rule[1];
      const app = el.getAttribute("data-app");
      if (show && app && appSelect) show = appSelect.value === app;
      el.hidden = !show;
    });
  }
  document.querySelectorAll("form").forEach(function (form) {
    if (!form.querySelector("[data-show-when], [data-required-when], [data-expiry-select]")) return;
    form.addEventListener("change", function (ev) { refreshForm(form, ev.target); });
    refreshForm(form, null);
  });

  // A dialog whose form came back with problems opens again as the page
  // loads, with the focus on its first invalid field.
  document.querySelectorAll("dialog[data-open-on-load]").forEach(function (dialog) {
    if (!canDialog) return;
    dialog.close();
    openDialog(dialog);
  });

  // Filters apply as soon as a choice changes.
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form && typeof select.form.requestSubmit === "function") select.form.requestSubmit();
    });
  });

  // Dangerous confirmations stay disabled until the name is typed; the
  // server checks it again.
  function wireMatch(root) {
    root.querySelectorAll("[data-enable-on-match]").forEach(function (button) {
      const input = root.querySelector("#" + CSS.escape(button.getAttribute("data-enable-on-match")));
      if (!input) return;
      const update = function () {
        button.disabled = input.value.trim() !== input.getAttribute("data-match").trim();
      };
      input.addEventListener("input", update);
      update();
    });
  }
  wireMatch(document);
})();
