package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/adserver/adserver/events"
)

func TestDashboardFiles(t *testing.T) {
	h, err := New(Config{Conn: &countingConn{}})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	noRedirect := *httpClient
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := noRedirect.Get(base + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 301 || !strings.HasSuffix(res.Header.Get("Location"), "/dashboard/") {
		t.Fatalf("/dashboard: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	for path, ctype := range map[string]string{"/dashboard/": "text/html", "/dashboard/index.html": "text/html",
		"/dashboard/app.js": "javascript", "/dashboard/style.css": "text/css", "/dashboard/favicon.svg": "image/svg+xml"} {
		a := get(t, base, path, "")
		if a.status != 200 || !strings.Contains(a.header.Get("Content-Type"), ctype) || len(a.body) == 0 {
			t.Fatalf("%s: %d %s", path, a.status, a.header.Get("Content-Type"))
		}
		if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("%s: CSP %q", path, csp)
		}
		// Offline: nothing is loaded from another origin.
		if strings.Contains(string(a.body), "http://") || strings.Contains(string(a.body), "https://") {
			if path != "/dashboard/favicon.svg" && path != "/dashboard/app.js" {
				t.Fatalf("%s refers to another origin", path)
			}
		}
		etag := a.header.Get("ETag")
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("If-None-Match", etag)
		r2, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if etag == "" || r2.StatusCode != 304 {
			t.Fatalf("%s: ETag %q, conditional GET %d", path, etag, r2.StatusCode)
		}
	}
	for _, p := range []string{"/dashboard/nope.js", "/dashboard/../reports.go", "/dashboard/dashboard/app.js"} {
		if a := get(t, base, p, ""); a.status != 404 {
			t.Fatalf("%s: %d", p, a.status)
		}
	}
	if a := do(t, "POST", base+"/dashboard/", ""); a.status != 405 {
		t.Fatalf("POST: %d", a.status)
	}
	// app.js may name other origins only in comments or the SVG namespace.
	js := string(get(t, base, "/dashboard/app.js", "").body)
	for _, line := range strings.Split(js, "\n") {
		if strings.Contains(line, "://") && !strings.Contains(line, "http://www.w3.org/2000/svg") && !strings.HasPrefix(strings.TrimSpace(line), "//") {
			t.Fatalf("app.js refers to another origin: %s", line)
		}
	}
}

// chromiumPath finds Chromium. Without one the browser test skips, unless
// ADSERVER_TEST_REQUIRE_ALL=1 (CI), where it fails.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("ADSERVER_TEST_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("ADSERVER_TEST_REQUIRE_ALL") == "1" {
		t.Fatal("Chromium not found (install Debian's chromium, or set ADSERVER_TEST_CHROMIUM) and ADSERVER_TEST_REQUIRE_ALL=1")
	}
	t.Skip("Chromium not found; set ADSERVER_TEST_CHROMIUM or install chromium")
	return ""
}

// TestDashboardBrowser drives headless Chromium through the dashboard:
// a refused key, sign-in, the date picker, totals checked against the
// API to the micro, the chart, table sorting and tabs; it saves a
// screenshot in the test's artifact directory.
func TestDashboardBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	conn, _, db := testDB(t)

	// Ten days of events for A (three campaigns) and B.
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)
	var evs []events.Event
	var truth []modelEvent
	for i := range 1500 {
		adv, camp := "adv-a", []string{"summer-sale", "brand", "retargeting"}[rng.IntN(3)]
		if i%4 == 0 {
			adv, camp = "adv-b", "b-campaign"
		}
		at := start.Add(time.Duration(rng.IntN(10*24*3600)) * time.Second)
		cr := fmt.Sprintf("%s-%s", camp, []string{"300x250", "728x90"}[rng.IntN(2)])
		for _, typ := range []events.Type{events.TypeImpression, events.TypeClick, events.TypeConversion} {
			if typ == events.TypeClick && rng.IntN(8) != 0 || typ == events.TypeConversion && rng.IntN(30) != 0 {
				continue
			}
			cost := int64(0)
			if typ == events.TypeImpression {
				cost = 1000 + rng.Int64N(3000)
			}
			evs = append(evs, events.Event{Type: typ, ID: events.EventID(fmt.Sprint("b", i), "s", typ), Time: at, NodeID: "n", Seq: uint64(len(evs) + 1),
				AuctionID: fmt.Sprint("b", i), SlotID: "s", AdvertiserID: adv, CampaignID: camp, CreativeID: cr, PlacementID: "p-1", Country: "KR", CostMicros: cost})
			truth = append(truth, modelEvent{t: at, typ: typ, adv: adv, camp: camp, creative: cr, placement: "p-1", country: "KR", cost: cost})
		}
	}
	insertEvents(t, conn, db, evs)

	a := newAdvertiser("adv-a", "Asia/Seoul")
	h, err := New(Config{Conn: conn, Database: db, AdminToken: testAdminToken, Advertisers: advertiserLookup(a, newAdvertiser("adv-b", "UTC"))})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
			chromedp.WindowSize(1280, 1000), chromedp.Flag("lang", "en-US"))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	var mu sync.Mutex
	var exceptions []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			mu.Lock()
			exceptions = append(exceptions, fmt.Sprintf("%s %+v", e.ExceptionDetails.Text, e.ExceptionDetails.Exception))
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("cannot start Chromium at %s: %v", chromium, err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			shot(t, ctx, "failure.png")
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		must(js, err)
		return s
	}

	// A wrong key is refused on the sign-in form.
	must("open", chromedp.Do(ctx,
		chromedp.Navigate(base+"/dashboard/"),
		chromedp.WaitVisible(chromedp.ID("key")),
		chromedp.SendKeys(chromedp.ID("key"), "not-a-key"),
		chromedp.Click(chromedp.ID("signin-btn")),
		chromedp.WaitVisible(chromedp.ID("signin-error")),
	))
	if msg := eval(`document.getElementById('signin-error').textContent`); !strings.Contains(msg, "not accepted") {
		t.Fatalf("wrong key message: %q", msg)
	}

	// Sign in; the default range is the last 7 days in the advertiser's zone.
	must("sign in", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("key"), a.key),
		chromedp.Click(chromedp.ID("signin-btn")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
	))
	if tz := eval(`document.getElementById('tz-label').textContent`); tz != "Asia/Seoul" {
		t.Fatalf("time zone label %q", tz)
	}

	// Pick 2026-10-29 .. 2026-11-02 with the date inputs' keyboard, as a
	// user types into the picker (en-US order: month, day, year).
	must("date picker", chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("from"), "10292026"),
		chromedp.SendKeys(chromedp.ID("to"), "11022026"),
	))
	if from, to := eval(`document.getElementById('from').value`), eval(`document.getElementById('to').value`); from != "2026-10-29" || to != "2026-11-02" {
		t.Fatalf("date inputs hold %q and %q after typing", from, to)
	}
	must("apply", chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("apply")),
		chromedp.WaitVisible(chromedp.CSS(`#totals[data-state="ready"][data-range="2026-10-29/2026-11-02"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
	))

	// Totals on the page equal the API's, as the server wrote them.
	var shown map[string]string
	must("read totals", json.Unmarshal([]byte(eval(`JSON.stringify(Object.fromEntries([...document.querySelectorAll('#totals .metric')].map(e => [e.dataset.metric, e.dataset.raw])))`)), &shown))
	api := decodeReport(t, get(t, base, "/v1/reports?from=2026-10-29&to=2026-11-02&group_by=day", a.key))
	seoul, _ := time.LoadLocation("Asia/Seoul")
	_, wantTot := model(truth, modelQuery{loc: seoul, from: time.Date(2026, 10, 29, 0, 0, 0, 0, seoul), to: time.Date(2026, 11, 3, 0, 0, 0, 0, seoul), scope: "adv-a"})
	checkMetrics(t, "API totals", api.Totals, wantTot)
	if len(shown) != 9 {
		t.Fatalf("totals shown: %v", shown)
	}
	for k, v := range shown {
		if n, _ := api.Totals[k].(json.Number); n.String() != v {
			t.Errorf("totals %s: page %q, API %v", k, v, api.Totals[k])
		}
	}
	// And the page shows them: counts in full (en-US grouping), money to
	// the cent, rates as percentages to 0.01.
	var visible map[string]string
	must("read shown totals", json.Unmarshal([]byte(eval(`JSON.stringify(Object.fromEntries([...document.querySelectorAll('#totals .metric')].map(e => [e.dataset.metric, e.querySelector('.value').textContent])))`)), &visible))
	for _, k := range []string{"impressions", "clicks", "conversions"} {
		n, err := api.Totals[k].(json.Number).Int64()
		if err != nil || n == 0 {
			t.Fatalf("API totals %s = %v: the fixture must have some", k, api.Totals[k])
		}
		if want := groupThousands(n); visible[k] != want {
			t.Errorf("totals %s shown as %q, want %q", k, visible[k], want)
		}
	}
	for k, scale := range map[string]float64{"spend": 1, "ctr": 100, "conversion_rate": 100} {
		want, _ := api.Totals[k].(json.Number).Float64()
		text := strings.ReplaceAll(strings.TrimSuffix(visible[k], "%"), ",", "")
		got, err := strconv.ParseFloat(text, 64)
		if err != nil || math.Abs(got-want*scale) > 0.005+1e-9 {
			t.Errorf("totals %s shown as %q, API %v", k, visible[k], api.Totals[k])
		}
	}

	// The chart has a point per day for each series.
	if n := eval(`String(document.querySelectorAll('#chart g[data-series=impressions] circle').length)`); n != "5" {
		t.Errorf("chart points: %s, want 5 days", n)
	}

	// The campaign table: A's three campaigns, sortable.
	byCampaign := decodeReport(t, get(t, base, "/v1/reports?from=2026-10-29&to=2026-11-02&group_by=campaign", a.key))
	if n := eval(`document.getElementById('table').dataset.rows`); n != fmt.Sprint(len(byCampaign.Rows)) || n != "3" {
		t.Fatalf("table rows %s, API rows %d", n, len(byCampaign.Rows))
	}
	column := func(i int) []string {
		var out []string
		must("read column", json.Unmarshal([]byte(eval(fmt.Sprintf(
			`JSON.stringify([...document.querySelectorAll('#table tbody tr')].map(r => r.cells[%d].textContent))`, i))), &out))
		return out
	}
	impressionsBy := map[string]int64{}
	for _, r := range byCampaign.Rows {
		n, _ := r["impressions"].(json.Number).Int64()
		impressionsBy[r["campaign_id"].(string)] = n
	}
	for _, dir := range []int{-1, 1} {
		must("sort", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#table th[data-col="impressions"]`))))
		names := column(0)
		sorted := slices.IsSortedFunc(names, func(x, y string) int { return dir * int(impressionsBy[x]-impressionsBy[y]) })
		if len(names) != 3 || !sorted {
			t.Fatalf("sorted by impressions (dir %d): %v (%v)", dir, names, impressionsBy)
		}
	}
	// The creative tab.
	byCreative := decodeReport(t, get(t, base, "/v1/reports?from=2026-10-29&to=2026-11-02&group_by=campaign,creative", a.key))
	must("creative tab", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`.tabs button[data-tab="creative"]`))))
	if n := eval(`document.getElementById('table').dataset.rows`); n != fmt.Sprint(len(byCreative.Rows)) {
		t.Fatalf("creative rows %s, API %d", n, len(byCreative.Rows))
	}
	if body := eval(`document.body.innerText`); strings.Contains(body, "b-campaign") {
		t.Fatal("B's campaign on A's dashboard")
	}

	// The table's CSV download: the file the browser saves is the API's
	// CSV for the same range and group-by, byte for byte, under the name
	// the server suggests.
	dlDir := t.TempDir()
	yes := true
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dlDir, EventsEnabled: &yes})
	must("allow downloads", err)
	begun := make(chan browser.EventDownloadWillBegin, 4)
	done := make(chan browser.EventDownloadProgress, 4)
	must("listen for downloads", chromedp.ListenBrowser(ctx, func(ev any) {
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			select {
			case begun <- *e:
			default:
			}
		case *browser.EventDownloadProgress:
			if e.State == browser.DownloadProgressStateCompleted || e.State == browser.DownloadProgressStateCanceled {
				select {
				case done <- *e:
				default:
				}
			}
		}
	}))
	must("download CSV", chromedp.Do(ctx, chromedp.Click(chromedp.ID("csv-table"))))
	var dl browser.EventDownloadProgress
	var started browser.EventDownloadWillBegin
	timeout := time.After(15 * time.Second)
	for got := 0; got < 2; got++ {
		select {
		case started = <-begun:
		case dl = <-done:
		case <-timeout:
			shot(t, ctx, "failure.png")
			t.Fatal("the CSV download did not begin and finish within 15 s")
		}
	}
	if dl.State != browser.DownloadProgressStateCompleted || dl.GUID != started.GUID {
		t.Fatalf("CSV download: %+v (began %+v)", dl, started)
	}
	saved, err := os.ReadFile(filepath.Join(dlDir, dl.GUID))
	if err != nil {
		t.Fatalf("the downloaded CSV: %v", err)
	}
	apiCSV := get(t, base, "/v1/reports?from=2026-10-29&to=2026-11-02&group_by=campaign,creative&format=csv", a.key)
	if apiCSV.status != 200 || string(saved) != string(apiCSV.body) {
		t.Fatalf("downloaded CSV differs from the API's (%d):\n%s\nAPI:\n%s", apiCSV.status, saved, apiCSV.body)
	}
	if lines := strings.Count(string(saved), "\n"); lines != len(byCreative.Rows)+1 {
		t.Fatalf("downloaded CSV has %d lines, want a header and %d rows", lines, len(byCreative.Rows))
	}
	if want := "report_20261029T0000_20261103T0000.csv"; started.SuggestedFilename != want ||
		!strings.Contains(apiCSV.header.Get("Content-Disposition"), `filename="`+want+`"`) {
		t.Fatalf("CSV file name %q, API %q, want %q", started.SuggestedFilename, apiCSV.header.Get("Content-Disposition"), want)
	}

	// The hourly view: one point per hour of the five days, labels in Seoul time.
	must("hourly", chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("gran-hour")),
		chromedp.WaitVisible(chromedp.CSS(`#gran-hour[aria-pressed="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
	))
	if n := eval(`String((document.querySelector('#chart g[data-series=clicks] path.series-line').getAttribute('d').match(/[ML]/g) || []).length)`); n != "120" {
		t.Errorf("hourly chart points: %s, want 120", n)
	}
	if title := eval(`document.getElementById('chart-title').textContent`); title != "Hourly performance" {
		t.Errorf("chart title %q", title)
	}
	shot(t, ctx, "dashboard-hourly.png")
	must("daily again", chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("gran-day")),
		chromedp.WaitVisible(chromedp.CSS(`#gran-day[aria-pressed="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
	))

	// Hover the chart so the screenshot shows a tooltip.
	must("hover", chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const r = document.querySelector('#chart svg rect:last-of-type').getBoundingClientRect();
		document.querySelector('#chart svg rect:last-of-type').dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width * 0.6, clientY: r.top + 60, bubbles: true}));
	})()`)))
	shot(t, ctx, "dashboard.png")

	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Fatalf("uncaught exceptions in the page: %v", exceptions)
	}
}

// groupThousands writes n as en-US Intl.NumberFormat does: 1,234,567.
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// shot saves a full-page screenshot in the test's artifact directory.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("no screenshot: %v", err)
		return
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("cannot save the screenshot: %v", err)
		return
	}
	t.Logf("screenshot: %s (go test -artifacts keeps it)", path)
}
