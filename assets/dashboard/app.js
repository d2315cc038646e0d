// The hamgate dashboard: reads /api/v1/stats (same origin, nothing else) and draws the figures
// as inline SVG. No framework and no build step, because the file is embedded in the binary as
// it is and must work on a network that reaches nothing but hamgate.
(() => {
  "use strict";

  const SVG_NS = "http://www.w3.org/2000/svg";
  const REFRESH_MS = 10000;
  const KEY_STORE = "hamgate.dashboard.key";
  // Each range asks for at most a few hundred buckets: the server's limit is 2,000, and a bar
  // thinner than a pixel or two says nothing.
  const RANGES = {
    hour: { secs: 3600, step: "minute", per: "per minute", span: "the last hour" },
    day: { secs: 86400, step: "hour", per: "per hour", span: "the last 24 hours" },
    week: { secs: 7 * 86400, step: "hour", per: "per hour", span: "the last 7 days" },
    month: { secs: 30 * 86400, step: "day", per: "per day", span: "the last 30 days" },
  };

  const state = {
    key: "",
    site: "",
    range: "hour",
    // Whether the key may see every site; learnt from the first answer that shows it.
    admin: false,
    data: null,
    // Server clock minus ours, in seconds: the buckets are the server's, and a laptop clock a
    // few minutes off would otherwise ask for an empty window.
    skew: 0,
    seq: 0,
    inflight: null,
    timer: 0,
  };

  const $ = (id) => document.getElementById(id);
  const fmtInt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

  // ---------------------------------------------------------------------------------------
  // Key and view state: local storage for the key, the URL fragment for bookmarks.

  function readStoredKey() {
    try {
      return localStorage.getItem(KEY_STORE) || "";
    } catch (_) {
      return "";
    }
  }

  function storeKey(key) {
    try {
      if (key) localStorage.setItem(KEY_STORE, key);
      else localStorage.removeItem(KEY_STORE);
    } catch (_) {
      // Storage can be disabled; the key then lives for this page only.
    }
  }

  // The fragment never reaches the server, so `#key=...` keeps the key out of access logs.
  // It is taken out of the address bar at once, so it is not shared with a screenshot.
  function readFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const key = params.get("key");
    if (key) {
      state.key = key.trim();
      storeKey(state.key);
    }
    const site = params.get("site");
    if (site !== null) state.site = site;
    const range = params.get("range");
    if (range && RANGES[range]) state.range = range;
    writeFragment();
  }

  function writeFragment() {
    const params = new URLSearchParams();
    if (state.site) params.set("site", state.site);
    if (state.range !== "hour") params.set("range", state.range);
    const frag = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (frag ? "#" + frag : ""));
  }

  // ---------------------------------------------------------------------------------------
  // Fetching.

  async function load() {
    const seq = ++state.seq;
    if (state.inflight) state.inflight.abort();
    const abort = new AbortController();
    state.inflight = abort;
    const range = RANGES[state.range];
    // `to` is exclusive: one second on, so a check made this very second is counted.
    const to = Math.floor(Date.now() / 1000 + state.skew) + 1;
    const query = new URLSearchParams({
      from: String(to - range.secs),
      to: String(to),
      step: range.step,
    });
    if (state.site) query.set("site", state.site);
    const headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = "Bearer " + state.key;
    try {
      const res = await fetch("/api/v1/stats?" + query, {
        headers,
        cache: "no-store",
        credentials: "omit",
        signal: abort.signal,
      });
      const date = Date.parse(res.headers.get("Date") || "");
      // The Date header has whole seconds: a difference under 3 s is that rounding, not skew.
      if (!Number.isNaN(date)) {
        const skew = Math.round((date - Date.now()) / 1000);
        state.skew = Math.abs(skew) < 3 ? 0 : skew;
      }
      let body = null;
      try {
        body = await res.json();
      } catch (_) {
        body = null;
      }
      if (seq !== state.seq) return;
      if (res.ok && body && Array.isArray(body.buckets)) {
        showError("");
        state.data = body;
        render();
        setStatus("Updated " + new Date().toLocaleTimeString() + " · refreshes every " +
          REFRESH_MS / 1000 + " s");
      } else {
        failed(res.status, body);
      }
    } catch (err) {
      if (err && err.name === "AbortError") return;
      if (seq !== state.seq) return;
      // Keep the last figures: a restart of the server should not blank an operator's screen.
      showError("Cannot reach hamgate (" + (err && err.message ? err.message : err) +
        "). The figures below are from the last answer.");
      setStatus("Retrying every " + REFRESH_MS / 1000 + " s");
    } finally {
      if (seq === state.seq) state.inflight = null;
    }
  }

  function failed(status, body) {
    const why = body && typeof body.error === "string" ? body.error : "";
    let msg;
    if (status === 401) {
      msg = (state.key ? "401: this key was not accepted" : "401: the stats need a key") +
        (why ? " (" + why + ")" : "") + ". Enter a site key or the admin key.";
      openKeyForm();
    } else if (status === 403) {
      msg = "403: " + (why || "this key may not see this site") +
        ". Choose the key's own site, or use the admin key.";
      openKeyForm();
    } else {
      msg = status + ": " + (why || "the server could not answer");
    }
    showError(msg);
    // Figures shown for another key or site would now be mislabelled.
    state.data = null;
    render();
    setStatus("Not updated");
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = setInterval(() => {
      if (!state.inflight && !document.hidden) load();
    }, REFRESH_MS);
  }

  // ---------------------------------------------------------------------------------------
  // Page chrome.

  function showError(msg) {
    const el = $("error");
    el.textContent = msg;
    el.hidden = !msg;
  }

  function setStatus(msg) {
    $("status").textContent = msg;
  }

  function openKeyForm() {
    $("key-form").hidden = false;
    $("key-toggle").setAttribute("aria-expanded", "true");
  }

  function closeKeyForm() {
    $("key-form").hidden = true;
    $("key-toggle").setAttribute("aria-expanded", "false");
  }

  function setNumber(id, value, text) {
    const el = $(id);
    el.dataset.value = value === null || value === undefined ? "" : String(value);
    el.textContent = text;
  }

  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    return v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtInt.format(v);
  }

  function fmtPercent(v) {
    return (v * 100).toFixed(v > 0 && v < 0.1 ? 2 : 1) + "%";
  }

  function renderSites(d) {
    const select = $("site-select");
    if (d) {
      if (d.site === null || (Array.isArray(d.sites) && d.sites.length > 1)) state.admin = true;
    }
    const sites = d && Array.isArray(d.sites) ? d.sites : [];
    const want = [];
    if (state.admin) want.push(["", "All sites"]);
    for (const s of sites) want.push([s, s]);
    if (state.site && !sites.includes(state.site)) want.push([state.site, state.site]);
    const current = d ? (d.site === null ? "" : d.site) : state.site;
    const same = select.options.length === want.length &&
      want.every(([v], i) => select.options[i].value === v);
    if (!same) {
      select.replaceChildren(...want.map(([v, label]) => new Option(label, v)));
    }
    select.value = current;
    select.disabled = want.length < 2;
  }

  function renderTotals(d) {
    const t = d ? d.totals : null;
    const n = (field) => (t ? t[field] : null);
    const txt = (field) => (t ? fmtInt.format(t[field]) : "–");
    setNumber("total-checks", n("checks"), txt("checks"));
    setNumber("total-degraded", n("degraded"), txt("degraded"));
    setNumber("total-accept", n("accept"), txt("accept"));
    setNumber("total-hold", n("hold"), txt("hold"));
    setNumber("total-reject", n("reject"), txt("reject"));
    setNumber("total-false-positives", n("false_positives"), txt("false_positives"));
    setNumber("total-missed-spam", n("missed_spam"), txt("missed_spam"));
    setNumber("total-feedback-spam", n("feedback_spam"), txt("feedback_spam"));
    setNumber("total-feedback-ham", n("feedback_ham"), txt("feedback_ham"));
    const labels = t ? t.feedback_spam + t.feedback_ham : null;
    setNumber("total-feedback", labels, t ? fmtInt.format(labels) : "–");
    const rate = t && t.checks > 0 ? t.reject / t.checks : null;
    setNumber("spam-rate", rate, rate === null ? "–" : fmtPercent(rate));
    const lat = t && t.latency_ms ? t.latency_ms : null;
    setNumber("latency-p50", lat ? lat.p50 : null, fmtMs(lat ? lat.p50 : null));
    setNumber("latency-p90", lat ? lat.p90 : null, fmtMs(lat ? lat.p90 : null));
    setNumber("latency-p99", lat ? lat.p99 : null, fmtMs(lat ? lat.p99 : null));
  }

  function renderModel(d) {
    const m = d && d.model ? d.model : null;
    setNumber("model-version", m ? m.version : null, m ? m.version : "–");
    const created = $("model-created");
    if (m && m.created_at) {
      const when = new Date(m.created_at * 1000);
      created.dateTime = when.toISOString();
      created.textContent = when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
    } else {
      created.removeAttribute("datetime");
      created.textContent = "–";
    }
    setNumber("model-accept-below", m ? m.accept_below : null, m ? m.accept_below.toFixed(3) : "–");
    setNumber("model-reject-at", m ? m.reject_at : null, m ? m.reject_at.toFixed(3) : "–");
    renderSiteThresholds(m && Array.isArray(m.sites) ? m.sites : []);
  }

  const SOURCE_TEXT = {
    new_site: "learning: new-site thresholds",
    model: "model thresholds",
    fitted: "fitted on its labels",
    configured: "set in the configuration",
  };

  function renderSiteThresholds(sites) {
    const body = document.querySelector("#site-thresholds tbody");
    body.replaceChildren();
    for (const s of sites) {
      const tr = document.createElement("tr");
      tr.dataset.site = s.site;
      tr.dataset.labelsHam = String(s.labels_learned[0]);
      tr.dataset.labelsSpam = String(s.labels_learned[1]);
      tr.dataset.learning = String(s.learning);
      tr.dataset.source = s.thresholds_source;
      tr.dataset.acceptBelow = String(s.accept_below);
      tr.dataset.rejectAt = String(s.reject_at);
      const learned = `${fmtInt.format(s.labels_learned[0])} ham · ${fmtInt.format(s.labels_learned[1])} spam`;
      const status = SOURCE_TEXT[s.thresholds_source] || s.thresholds_source;
      const cells = [
        s.site,
        s.learning ? `${learned} (of ${fmtInt.format(s.min_learns)} each)` : learned,
        status,
        s.accept_below.toFixed(3),
        s.reject_at.toFixed(3),
      ];
      for (const [i, text] of cells.entries()) {
        const td = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) td.scope = "row";
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  function renderRangeButtons() {
    for (const b of document.querySelectorAll("#range-buttons button")) {
      b.setAttribute("aria-pressed", String(b.dataset.range === state.range));
    }
  }

  function render() {
    const d = state.data;
    renderSites(d);
    renderRangeButtons();
    renderTotals(d);
    renderModel(d);
    renderCharts(d);
  }

  // ---------------------------------------------------------------------------------------
  // Charts: one small SVG renderer for bars, stacked bars and lines. Drawn at the container's
  // width in pixels (the viewBox is that size), so text and strokes stay crisp at any width.

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG_NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function titled(node, text) {
    el("title", {}, node).textContent = text;
    return node;
  }

  // Round numbers for the y axis: 1, 2 or 5 times a power of ten.
  function niceTicks(max, count, integer) {
    if (!(max > 0)) max = integer ? 1 : 1;
    const raw = max / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    let step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
    if (integer) step = Math.max(1, Math.round(step));
    const top = Math.ceil(max / step - 1e-9) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
    return { top, ticks };
  }

  function bucketLabel(start, stepSecs, spanSecs) {
    const when = new Date(start * 1000);
    if (stepSecs >= 86400) return when.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    const time = when.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    if (spanSecs > 1.5 * 86400) return when.toLocaleDateString(undefined, { weekday: "short" }) + " " + time;
    return time;
  }

  function bucketTitle(start, stepSecs) {
    const when = new Date(start * 1000);
    if (stepSecs >= 86400) return when.toLocaleDateString(undefined, { dateStyle: "medium" });
    return when.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  // spec: {id, title, summary, kind: "line" | "bars" | "stacked", series: [{name, label,
  // values}], percent, integer, unit}
  function drawChart(spec, d) {
    const fig = $(spec.id);
    const host = fig.querySelector(".plot");
    const W = Math.max(240, Math.floor(host.clientWidth || 600));
    const H = W < 520 ? 170 : 210;
    const M = { l: 44, r: 10, t: 10, b: 24 };
    const pw = W - M.l - M.r;
    const ph = H - M.t - M.b;
    const titleId = spec.id + "-title";
    const descId = spec.id + "-desc";
    const svg = el("svg", {
      viewBox: "0 0 " + W + " " + H,
      width: W,
      height: H,
      role: "img",
      "aria-labelledby": titleId + " " + descId,
      "data-kind": spec.kind,
    });
    el("title", { id: titleId }, svg).textContent = spec.title;
    el("desc", { id: descId }, svg).textContent = spec.summary;

    const buckets = d ? d.buckets : [];
    const n = buckets.length;
    const stepSecs = d ? d.step : 60;
    const spanSecs = d ? d.to - d.from : 3600;

    let max = 0;
    for (let i = 0; i < n; i++) {
      if (spec.kind === "stacked") {
        let sum = 0;
        for (const s of spec.series) sum += s.values[i] || 0;
        max = Math.max(max, sum);
      } else {
        for (const s of spec.series) if (s.values[i] !== null) max = Math.max(max, s.values[i]);
      }
    }
    const { top, ticks } = spec.percent ? { top: 1, ticks: [0, 0.25, 0.5, 0.75, 1] }
      : niceTicks(max, 4, spec.integer);
    const y = (v) => M.t + ph - (v / top) * ph;
    const band = n > 0 ? pw / n : pw;
    const x = (i) => M.l + i * band;

    const axis = el("g", { class: "axis", "aria-hidden": "true" }, svg);
    for (const t of ticks) {
      el("line", { class: "grid", x1: M.l, x2: W - M.r, y1: y(t), y2: y(t) }, axis);
      const label = spec.percent ? Math.round(t * 100) + "%" : spec.integer ? fmtInt.format(t)
        : String(Math.round(t * 100) / 100);
      el("text", { x: M.l - 6, y: y(t), "text-anchor": "end", "dominant-baseline": "middle" }, axis)
        .textContent = label;
    }
    if (n > 0) {
      const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 78))));
      for (let i = 0; i < n; i += every) {
        const cx = x(i) + band / 2;
        el("line", { class: "tick", x1: cx, x2: cx, y1: M.t + ph, y2: M.t + ph + 4 }, axis);
        el("text", { x: cx, y: H - 6, "text-anchor": i === 0 ? "start" : "middle" }, axis)
          .textContent = bucketLabel(buckets[i].start, stepSecs, spanSecs);
      }
    }
    el("line", { class: "baseline", x1: M.l, x2: W - M.r, y1: M.t + ph, y2: M.t + ph }, axis);

    const plot = el("g", { class: "data" }, svg);
    const unit = spec.unit || "";
    const fmtValue = (v) => (spec.percent ? fmtPercent(v) : spec.integer ? fmtInt.format(v) : fmtMs(v) + unit);

    if (spec.kind === "stacked" || spec.kind === "bars") {
      const gap = band > 4 ? band * 0.18 : 0;
      const groupW = Math.max(1, band - gap);
      const perSeries = spec.kind === "bars" ? groupW / spec.series.length : groupW;
      for (let i = 0; i < n; i++) {
        let base = 0;
        spec.series.forEach((s, k) => {
          const v = s.values[i] || 0;
          if (v <= 0) return;
          const x0 = x(i) + gap / 2 + (spec.kind === "bars" ? k * perSeries : 0);
          const y0 = spec.kind === "stacked" ? base + v : v;
          const yTop = y(y0);
          const h = Math.max(1, y(spec.kind === "stacked" ? base : 0) - yTop);
          titled(el("rect", {
            class: "bar series s-" + s.name,
            "data-series": s.name,
            "data-value": v,
            "data-start": buckets[i].start,
            x: x0.toFixed(2),
            y: yTop.toFixed(2),
            width: Math.max(1, perSeries).toFixed(2),
            height: h.toFixed(2),
          }, plot), bucketTitle(buckets[i].start, stepSecs) + " · " + s.label + ": " + fmtValue(v));
          if (spec.kind === "stacked") base += v;
        });
      }
    } else {
      for (const s of spec.series) {
        let dpath = "";
        let pen = false;
        let segments = 0;
        for (let i = 0; i < n; i++) {
          const v = s.values[i];
          if (v === null || v === undefined) {
            pen = false;
            continue;
          }
          const px = (x(i) + band / 2).toFixed(2);
          const py = y(v).toFixed(2);
          dpath += (pen ? "L" : "M") + px + " " + py + " ";
          if (pen) segments++;
          pen = true;
        }
        // Lone points are left to the dots below.
        if (segments > 0) {
          el("path", { class: "line series s-" + s.name, "data-series": s.name, d: dpath.trim() }, plot);
        }
        // Dots carry the exact figure on hover, and make a lone bucket visible at all
        // (a path through one point has no length).
        for (let i = 0; i < n; i++) {
          const v = s.values[i];
          if (v === null || v === undefined) continue;
          titled(el("circle", {
            class: "dot series s-" + s.name,
            "data-series": s.name,
            "data-value": v,
            "data-start": buckets[i].start,
            cx: (x(i) + band / 2).toFixed(2),
            cy: y(v).toFixed(2),
            // A point with no neighbour to join is drawn larger, or it is easy to miss.
            r: lone(s.values, i) ? 4 : n > 100 ? 1.5 : 2.5,
          }, plot), bucketTitle(buckets[i].start, stepSecs) + " · " + s.label + ": " + fmtValue(v));
        }
      }
    }

    if (!d || !spec.series.some((s) => s.values.some((v) => v !== null && v > 0))) {
      el("text", {
        class: "empty",
        x: M.l + pw / 2,
        y: M.t + ph / 2,
        "text-anchor": "middle",
        "dominant-baseline": "middle",
      }, svg).textContent = d ? spec.emptyText || "Nothing in this range" : "No data";
    }
    host.replaceChildren(svg);
  }

  function lone(values, i) {
    const gap = (j) => j < 0 || j >= values.length || values[j] === null || values[j] === undefined;
    return gap(i - 1) && gap(i + 1);
  }

  function renderCharts(d) {
    const buckets = d ? d.buckets : [];
    const range = RANGES[state.range];
    const col = (f) => buckets.map((b) => b[f]);
    const lat = (p) => buckets.map((b) => (b.latency_ms ? b.latency_ms[p] : null));
    const t = d ? d.totals : null;
    const span = range.span + ", " + range.per;
    const where = d ? (d.site === null ? "all sites" : "site " + d.site) : "";

    drawChart({
      id: "spam-rate-chart",
      kind: "line",
      percent: true,
      title: "Spam rate " + range.per,
      summary: d ? "Share of checks rejected as spam, " + span + ", " + where + ": " +
        (t.checks > 0 ? fmtPercent(t.reject / t.checks) + " overall." : "no checks.") : "No data.",
      emptyText: "No checks in this range",
      series: [{
        name: "spam",
        label: "spam rate",
        values: buckets.map((b) => (b.checks > 0 ? b.reject / b.checks : null)),
      }],
    }, d);

    drawChart({
      id: "verdicts-chart",
      kind: "stacked",
      integer: true,
      title: "Verdicts " + range.per,
      summary: d ? "Checks by verdict, stacked, " + span + ", " + where + ": " + t.accept +
        " accepted, " + t.hold + " held, " + t.reject + " rejected." : "No data.",
      emptyText: "No checks in this range",
      series: [
        { name: "accept", label: "accepted", values: col("accept") },
        { name: "hold", label: "held", values: col("hold") },
        { name: "reject", label: "rejected", values: col("reject") },
      ],
    }, d);

    drawChart({
      id: "held-chart",
      kind: "bars",
      integer: true,
      title: "Comments held for moderation " + range.per,
      summary: d ? "Held-queue inflow, " + span + ", " + where + ": " + t.hold + " held." : "No data.",
      emptyText: "Nothing held in this range",
      series: [{ name: "hold", label: "held", values: col("hold") }],
    }, d);

    drawChart({
      id: "feedback-chart",
      kind: "bars",
      integer: true,
      title: "False positives and missed spam " + range.per,
      summary: d ? "Mistakes confirmed by moderators' labels, " + span + ", " + where + ": " +
        t.false_positives + " false positives (ham held or rejected), " + t.missed_spam +
        " missed spam (spam accepted)." : "No data.",
      emptyText: "No confirmed mistakes in this range",
      series: [
        { name: "fp", label: "false positives", values: col("false_positives") },
        { name: "missed", label: "missed spam", values: col("missed_spam") },
      ],
    }, d);

    drawChart({
      id: "latency-chart",
      kind: "line",
      unit: " ms",
      title: "Check latency " + range.per + " (milliseconds)",
      summary: d ? "Latency percentiles of checks in milliseconds, " + span + ", " + where + ": " +
        (t.latency_ms ? "p50 " + fmtMs(t.latency_ms.p50) + ", p90 " + fmtMs(t.latency_ms.p90) +
          ", p99 " + fmtMs(t.latency_ms.p99) + "." : "no checks.") : "No data.",
      emptyText: "No checks in this range",
      series: [
        { name: "p50", label: "p50", values: lat("p50") },
        { name: "p90", label: "p90", values: lat("p90") },
        { name: "p99", label: "p99", values: lat("p99") },
      ],
    }, d);
  }

  // ---------------------------------------------------------------------------------------
  // Wiring.

  function init() {
    state.key = readStoredKey();
    readFragment();
    $("key-input").value = state.key;

    $("site-select").addEventListener("change", (e) => {
      state.site = e.target.value;
      writeFragment();
      load();
    });
    for (const b of document.querySelectorAll("#range-buttons button")) {
      b.addEventListener("click", () => {
        state.range = b.dataset.range;
        writeFragment();
        renderRangeButtons();
        load();
      });
    }
    $("key-toggle").addEventListener("click", () => {
      if ($("key-form").hidden) {
        openKeyForm();
        $("key-input").focus();
      } else {
        closeKeyForm();
      }
    });
    $("key-form").addEventListener("submit", (e) => {
      e.preventDefault();
      state.key = $("key-input").value.trim();
      storeKey(state.key);
      // A new key may belong to another site: start from its default view.
      state.site = "";
      state.admin = false;
      writeFragment();
      closeKeyForm();
      load();
    });
    $("key-forget").addEventListener("click", () => {
      state.key = "";
      state.admin = false;
      storeKey("");
      $("key-input").value = "";
      load();
    });
    window.addEventListener("hashchange", () => {
      readFragment();
      $("key-input").value = state.key;
      load();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) load();
    });
    // Redraw at the new width; the data is already here.
    // Only a change of width matters: redrawing changes the height, which must not loop.
    let pending = 0;
    let lastWidth = 0;
    new ResizeObserver((entries) => {
      const width = Math.round(entries[0].contentRect.width);
      if (width === lastWidth) return;
      lastWidth = width;
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(() => renderCharts(state.data));
    }).observe(document.querySelector(".charts"));

    render();
    load();
    schedule();
  }

  init();
})();
