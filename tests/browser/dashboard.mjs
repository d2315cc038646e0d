// Drives the dashboard of a running hamgate in the system's headless Chromium and checks that
// it shows what tests/dashboard.rs made: the numbers, the charts, the site selector, the key
// handling (401, 403, `#key=`), and a page that breaks no CSP rule and logs no error.
//
//   node tests/browser/dashboard.mjs <base url> <screenshot path>
//
// The expected figures come in DASHBOARD_EXPECT (JSON: site, checks, accept, hold, reject,
// false_positives, missed_spam, feedback_spam, feedback_ham, model_version), the keys in
// DASHBOARD_SITE_KEY and DASHBOARD_ADMIN_KEY, and the sites the admin sees in
// DASHBOARD_SITES (comma-separated). Exits 1 with a FAIL line per mismatch.
//
// playwright-core drives the Debian chromium at /usr/bin/chromium; it never downloads a
// browser of its own.

import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error("usage: node dashboard.mjs <base url> <screenshot path>");
  process.exit(2);
}
const expect = JSON.parse(process.env.DASHBOARD_EXPECT || "null");
const siteKey = process.env.DASHBOARD_SITE_KEY || "";
const adminKey = process.env.DASHBOARD_ADMIN_KEY || "";
const adminSites = (process.env.DASHBOARD_SITES || "").split(",").filter(Boolean);
if (!expect || !siteKey || !adminKey) {
  console.error("DASHBOARD_EXPECT, DASHBOARD_SITE_KEY and DASHBOARD_ADMIN_KEY must be set");
  process.exit(2);
}
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT_MS = 15000;
const origin = new URL(base).origin;

const failures = [];
function check(ok, what) {
  if (ok) {
    console.log("ok   " + what);
  } else {
    console.log("FAIL " + what);
    failures.push(what);
  }
}
function equal(actual, expected, what) {
  check(actual === expected, `${what}: ${JSON.stringify(actual)} (expected ${JSON.stringify(expected)})`);
}

// A hung browser must not hang the test suite.
const watchdog = setTimeout(() => {
  console.log("FAIL the browser test did not finish within 120 s");
  process.exit(1);
}, 120000);

// Chromium's own background traffic is switched off: the machine's network is closed, and the
// page must be seen to ask for nothing but its own origin.
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic",
  ],
});

// Everything a page says or asks for, per phase; `allowed` lists the console errors a phase
// expects (Chromium logs a failed fetch, such as the 401 the test provokes, as an error).
function watch(page, phase, allowed = []) {
  const seen = { errors: [], requests: [] };
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const text = m.text();
    if (m.type() === "error" && allowed.some((re) => re.test(text))) return;
    seen.errors.push(`${phase}: console ${m.type()}: ${text}`);
  });
  page.on("pageerror", (e) => seen.errors.push(`${phase}: page error: ${e.message}`));
  page.on("request", (r) => seen.requests.push(r));
  return seen;
}

// A CSP violation is also reported to the page as an event; an init script (run by the
// browser, outside the page's CSP) records them.
async function recordViolations(context) {
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
}

async function violations(page, phase) {
  const v = await page.evaluate(() => window.__csp || []);
  check(v.length === 0, `${phase}: no CSP violations ${v.length ? JSON.stringify(v) : ""}`);
}

function requestsSameOrigin(seen, phase) {
  const foreign = seen.requests.map((r) => r.url()).filter((u) => !u.startsWith(origin + "/"));
  check(foreign.length === 0, `${phase}: every request stays on ${origin} ${foreign.length ? JSON.stringify(foreign) : ""}`);
  const leaked = seen.requests.map((r) => r.url()).filter((u) => u.includes(siteKey) || u.includes(adminKey));
  check(leaked.length === 0, `${phase}: no key in any request URL ${leaked.length ? JSON.stringify(leaked) : ""}`);
}

async function dataValue(page, sel) {
  return page.$eval(sel, (e) => e.dataset.value);
}

async function waitNumber(page, id, value, phase) {
  try {
    await page.waitForSelector(`#${id}[data-value="${value}"]`, { timeout: WAIT_MS });
    return true;
  } catch (_) {
    const got = await page.$eval(`#${id}`, (e) => e.dataset.value).catch(() => "(missing)");
    const err = await page.$eval("#error", (e) => (e.hidden ? "" : e.textContent)).catch(() => "");
    check(false, `${phase}: #${id} shows ${value} within ${WAIT_MS} ms (it shows ${JSON.stringify(got)}${err ? `; error line: ${err}` : ""})`);
    return false;
  }
}

async function checkTotals(page, phase) {
  const fields = {
    "total-checks": expect.checks,
    "total-accept": expect.accept,
    "total-hold": expect.hold,
    "total-reject": expect.reject,
    "total-false-positives": expect.false_positives,
    "total-missed-spam": expect.missed_spam,
    "total-feedback-spam": expect.feedback_spam,
    "total-feedback-ham": expect.feedback_ham,
  };
  for (const [id, want] of Object.entries(fields)) {
    equal(Number(await dataValue(page, `#${id}`)), want, `${phase}: #${id}`);
    // What a person reads, not only the attribute.
    equal((await page.textContent(`#${id}`)).replace(/[^0-9]/g, ""), String(want), `${phase}: #${id} text`);
  }
  const rate = Number(await dataValue(page, "#spam-rate"));
  check(Math.abs(rate - expect.reject / expect.checks) < 1e-9, `${phase}: #spam-rate ${rate} is reject/checks`);
  const p50 = Number(await dataValue(page, "#latency-p50"));
  const p99 = Number(await dataValue(page, "#latency-p99"));
  check(p50 > 0 && p99 >= p50, `${phase}: latency p50 ${p50} ms and p99 ${p99} ms are shown`);
  equal(await page.textContent("#model-version"), expect.model_version, `${phase}: #model-version`);
  const created = await page.getAttribute("#model-created", "datetime");
  check(Boolean(created) && !Number.isNaN(Date.parse(created)), `${phase}: #model-created has a date (${created})`);
  const accept = Number(await dataValue(page, "#model-accept-below"));
  const reject = Number(await dataValue(page, "#model-reject-at"));
  check(accept > 0 && accept < reject && reject <= 1, `${phase}: thresholds ${accept} < ${reject}`);
  // The site's own row: what it learned (the test's two labels), and that it is still learning,
  // decided with the new-site thresholds (stricter than the main ones: a wider hold band).
  const rows = await page.$$eval("#site-thresholds tbody tr", (trs) =>
    trs.map((tr) => ({ ...tr.dataset, text: tr.textContent })));
  const row = rows.find((r) => r.site === expect.site);
  check(Boolean(row), `${phase}: #site-thresholds has a row for ${expect.site} (${JSON.stringify(rows)})`);
  if (row) {
    equal(Number(row.labelsHam), expect.feedback_ham, `${phase}: ${expect.site} ham labels learned`);
    equal(Number(row.labelsSpam), expect.feedback_spam, `${phase}: ${expect.site} spam labels learned`);
    equal(row.learning, "true", `${phase}: ${expect.site} is still learning`);
    equal(row.source, "new_site", `${phase}: ${expect.site} uses the new-site thresholds`);
    check(/learning/.test(row.text) && /1 ham · 1 spam/.test(row.text), `${phase}: the row reads ${row.text}`);
    const [a, r] = [Number(row.acceptBelow), Number(row.rejectAt)];
    check(a > 0 && a < r && r <= 1 && (a < accept || r > reject), `${phase}: new-site thresholds ${a} < ${r} are stricter than ${accept} / ${reject}`);
  }
}

// The sum of the figures the chart drew for one series, and whether each mark has a size.
async function marks(page, chart, series) {
  return page.$$eval(`#${chart} svg .series[data-series="${series}"]`, (nodes) =>
    nodes.map((n) => {
      const b = n.getBBox();
      const r = n.getBoundingClientRect();
      // A level line has no height, so a path counts by its length.
      const drawn = n.tagName === "path"
        ? n.getTotalLength() > 0 && (r.width > 0 || r.height > 0)
        : b.width > 0 && b.height > 0 && r.width > 0 && r.height > 0;
      return { tag: n.tagName, value: n.dataset.value === undefined ? null : Number(n.dataset.value), drawn };
    }));
}

async function checkCharts(page, phase) {
  for (const id of ["spam-rate-chart", "verdicts-chart", "held-chart", "feedback-chart", "latency-chart"]) {
    const box = await page.$eval(`#${id} svg`, (s) => {
      const r = s.getBoundingClientRect();
      return { w: r.width, h: r.height, title: s.querySelector("title")?.textContent || "", desc: s.querySelector("desc")?.textContent || "", role: s.getAttribute("role") };
    }).catch(() => null);
    check(box && box.w > 100 && box.h > 50, `${phase}: #${id} svg is drawn (${box ? `${Math.round(box.w)}x${Math.round(box.h)}` : "missing"})`);
    check(box && box.role === "img" && box.title && box.desc, `${phase}: #${id} svg has role img, a title and a description`);
  }
  const sum = (ms) => ms.reduce((a, m) => a + (m.value || 0), 0);
  const allDrawn = (ms) => ms.length > 0 && ms.every((m) => m.drawn);

  const rate = await marks(page, "spam-rate-chart", "spam");
  check(allDrawn(rate), `${phase}: spam-rate chart draws its points (${rate.length} marks)`);
  const ratePoints = rate.filter((m) => m.tag === "circle");
  const weighted = ratePoints.length > 0 && ratePoints.every((m) => m.value >= 0 && m.value <= 1);
  check(weighted, `${phase}: spam-rate points are rates between 0 and 1`);

  for (const [series, want] of [["accept", expect.accept], ["hold", expect.hold], ["reject", expect.reject]]) {
    const bars = await marks(page, "verdicts-chart", series);
    equal(sum(bars), want, `${phase}: verdicts chart, ${series} bars add up`);
    if (want > 0) check(allDrawn(bars), `${phase}: verdicts chart, ${series} bars have a size`);
  }
  const held = await marks(page, "held-chart", "hold");
  equal(sum(held), expect.hold, `${phase}: held-queue chart adds up`);
  const fp = await marks(page, "feedback-chart", "fp");
  equal(sum(fp), expect.false_positives, `${phase}: false-positive bars add up`);
  if (expect.false_positives > 0) check(allDrawn(fp), `${phase}: false-positive bars have a size`);
  const missed = await marks(page, "feedback-chart", "missed");
  equal(sum(missed), expect.missed_spam, `${phase}: missed-spam bars add up`);
  if (expect.missed_spam > 0) check(allDrawn(missed), `${phase}: missed-spam bars have a size`);
  for (const p of ["p50", "p90", "p99"]) {
    const lat = await marks(page, "latency-chart", p);
    check(allDrawn(lat), `${phase}: latency chart draws ${p} (${lat.length} marks)`);
  }
}

async function noHorizontalScroll(page, width, phase) {
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  check(scroll <= width, `${phase}: no horizontal scrolling at ${width} px (page is ${scroll} px wide)`);
}

let exitCode = 0;
try {
  // --- Desktop, no key yet: the error line and the key form, then the site key typed in.
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await recordViolations(desktop);
  let page = await desktop.newPage();
  let seen = watch(page, "desktop", [/status of 401/]);
  const res = await page.goto(base + "/", { waitUntil: "load" });
  equal(res.status(), 200, "desktop: GET / status");
  const csp = res.headers()["content-security-policy"] || "";
  check(/default-src 'none'|default-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `desktop: the page is served under a strict CSP (${csp})`);
  await page.waitForSelector("#error:not([hidden])", { timeout: WAIT_MS });
  const err401 = await page.textContent("#error");
  check(/401/.test(err401), `desktop, no key: the error line says 401 (${err401})`);
  check(await page.isVisible("#key-input"), "desktop, no key: the key input is shown");
  equal(await dataValue(page, "#total-checks"), "", "desktop, no key: no figures are shown");

  await page.fill("#key-input", siteKey);
  await page.press("#key-input", "Enter");
  if (await waitNumber(page, "total-checks", expect.checks, "desktop")) {
    check(await page.isHidden("#error"), "desktop: the error line is gone once the key works");
    check(await page.isHidden("#key-form"), "desktop: the key form closes once the key works");
    await checkTotals(page, "desktop");
    await checkCharts(page, "desktop");
    equal(await page.inputValue("#site-select"), expect.site, "desktop: the site selector shows the key's site");
    check(await page.isDisabled("#site-select"), "desktop: a site key has nothing else to choose");
    const statsRequests = seen.requests.filter((r) => r.url().startsWith(origin + "/api/v1/stats"));
    const authed = statsRequests.filter((r) => r.headers()["authorization"] === `Bearer ${siteKey}`);
    check(authed.length > 0, "desktop: the key goes in the Authorization header");
    await noHorizontalScroll(page, 1280, "desktop");
    // A settled page: nothing in flight while the picture is taken.
    await page.waitForLoadState("networkidle");
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
  }
  await violations(page, "desktop");
  requestsSameOrigin(seen, "desktop");
  for (const e of seen.errors) check(false, e);

  // --- The same browser (key in local storage) asking for a site that is not its own: 403.
  page = await desktop.newPage();
  seen = watch(page, "desktop, other site", [/status of 403/]);
  await page.goto(base + "/#site=" + encodeURIComponent(adminSites.find((s) => s !== expect.site) || "other"));
  await page.waitForSelector("#error:not([hidden])", { timeout: WAIT_MS });
  const err403 = await page.textContent("#error");
  check(/403/.test(err403), `desktop, other site: the error line says 403 (${err403})`);
  check(await page.isVisible("#key-input"), "desktop, other site: the key input is offered");
  await violations(page, "desktop, other site");
  for (const e of seen.errors) check(false, e);
  await desktop.close();

  // --- Phone, admin key through the fragment: all sites, then one site, then another range.
  const phone = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  await recordViolations(phone);
  page = await phone.newPage();
  seen = watch(page, "phone");
  await page.goto(base + "/#key=" + encodeURIComponent(adminKey));
  if (await waitNumber(page, "total-checks", expect.checks, "phone")) {
    check(!page.url().includes(adminKey), `phone: the key is taken out of the address bar (${page.url()})`);
    const options = await page.$$eval("#site-select option", (os) => os.map((o) => o.value));
    equal(JSON.stringify(options), JSON.stringify(["", ...adminSites]), "phone: the admin sees all sites and each site");
    equal(await page.inputValue("#site-select"), "", "phone: the admin starts on all sites");
    await checkTotals(page, "phone, all sites");
    await checkCharts(page, "phone, all sites");
    await noHorizontalScroll(page, 390, "phone");
    const widths = await page.$$eval(".chart svg", (ss) => ss.map((s) => Math.round(s.getBoundingClientRect().width)));
    check(widths.every((w) => w >= 300 && w <= 390), `phone: the charts fit the screen (${widths.join(", ")} px)`);

    const other = adminSites.find((s) => s !== expect.site);
    if (other) {
      await page.selectOption("#site-select", other);
      await waitNumber(page, "total-checks", 0, `phone, site ${other}`);
      const empty = await page.$eval("#verdicts-chart svg .empty", (e) => e.textContent).catch(() => "");
      check(empty.length > 0, `phone, site ${other}: the verdicts chart says it has nothing (${empty})`);
    }
    await page.selectOption("#site-select", expect.site);
    await page.waitForFunction(() => document.querySelector("#verdicts-chart svg desc")?.textContent.includes("site "), null, { timeout: WAIT_MS });
    await waitNumber(page, "total-checks", expect.checks, `phone, site ${expect.site}`);

    await page.click('#range-buttons button[data-range="day"]');
    await page.waitForFunction(() => document.querySelector("#verdicts-chart svg title")?.textContent.includes("per hour"), null, { timeout: WAIT_MS });
    await waitNumber(page, "total-checks", expect.checks, "phone, day");
    await checkCharts(page, "phone, day");
    const last = seen.requests.filter((r) => r.url().includes("/api/v1/stats")).pop();
    check(last && /step=hour/.test(last.url()), `phone, day: hourly buckets are asked for (${last && last.url()})`);
    equal(await page.getAttribute('#range-buttons button[data-range="day"]', "aria-pressed"), "true", "phone, day: the range button is pressed");
  }
  await violations(page, "phone");
  requestsSameOrigin(seen, "phone");
  for (const e of seen.errors) check(false, e);
  await phone.close();
} catch (e) {
  console.log("FAIL " + (e && e.stack ? e.stack : e));
  failures.push(String(e));
} finally {
  await browser.close().catch(() => {});
  clearTimeout(watchdog);
}

if (failures.length > 0) {
  console.log(`\n${failures.length} check(s) failed:`);
  for (const f of failures) console.log("  - " + f);
  exitCode = 1;
} else {
  console.log("\nall dashboard checks passed");
}
process.exit(exitCode);
