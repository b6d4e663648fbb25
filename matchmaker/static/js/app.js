// Progressive enhancements; every page works without them.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content;

  // Listing form: disable the buttons once the form is on its way (after the clicked button's name has
  // been included in the submission), so a double click cannot post twice.
  const listingForm = document.getElementById("listing-form");
  listingForm?.addEventListener("submit", (event) => {
    const buttons = event.target.querySelectorAll("input[type=submit], button[type=submit]");
    setTimeout(() => buttons.forEach((b) => { b.disabled = true; }), 0);
  });

  // Forms that undo something ask first (data-confirm); inline onsubmit handlers are blocked by the CSP.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });

  // Affiliation field: suggest registered organizations from the datalist rendered beside it.
  const affiliation = document.getElementById("affiliation");
  if (affiliation && document.getElementById("affiliations")) affiliation.setAttribute("list", "affiliations");

  // Registration: show the fields of the chosen account type only.
  const accountTypes = document.querySelectorAll("input.account-type");
  if (accountTypes.length) {
    const sync = () => {
      const type = document.querySelector("input.account-type:checked")?.value || "enterprise";
      document.querySelectorAll("[data-account]").forEach((el) => {
        el.classList.toggle("d-none", el.dataset.account !== type);
      });
    };
    accountTypes.forEach((el) => el.addEventListener("change", sync));
    sync();
  }

  // Match preview on a need's page: loaded after the page so a cold model never delays it.
  const preview = document.getElementById("match-preview");
  if (preview) {
    fetch(preview.dataset.src, { headers: { "X-Requested-With": "fetch" } })
      .then((r) => (r.ok ? r.text() : Promise.reject(r.status)))
      .then((html) => { preview.innerHTML = html; })
      .catch(() => { preview.querySelector("p").textContent = preview.dataset.error || "—"; });
  }

  // Posting assistant: possible duplicates and vagueness warnings while a firm writes a need.
  const panel = document.getElementById("assistant");
  const form = document.getElementById("listing-form");
  if (panel && form) {
    const fields = ["title", "background", "problems", "targets"];
    let timer = null;
    let last = "";
    const render = (data) => {
      const warnings = panel.querySelector(".assistant-warnings");
      const similar = panel.querySelector(".assistant-similar");
      warnings.replaceChildren(...data.warnings.map((w) => {
        const li = document.createElement("li");
        li.textContent = w.message;
        li.dataset.code = w.code;
        return li;
      }));
      similar.replaceChildren(...data.similar.map((s) => {
        const li = document.createElement("li");
        const a = document.createElement("a");
        a.href = s.url; a.textContent = s.title; a.target = "_blank"; a.rel = "noopener";
        li.append(a);
        return li;
      }));
      panel.querySelector(".assistant-ok").hidden = data.warnings.length > 0 || data.similar.length > 0;
      panel.querySelector(".assistant-similar-block").hidden = data.similar.length === 0;
      panel.hidden = false;
    };
    const check = () => {
      const body = { exclude_id: panel.dataset.listingId ? Number(panel.dataset.listingId) : null };
      fields.forEach((f) => { body[f] = form.elements[f]?.value || ""; });
      const key = JSON.stringify(body);
      if (key === last) return;
      last = key;
      fetch(panel.dataset.src, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: key,
      }).then((r) => (r.ok ? r.json() : null)).then((data) => { if (data) render(data); }).catch(() => {});
    };
    fields.forEach((f) => form.elements[f]?.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(check, 700);
    }));
  }
})();
