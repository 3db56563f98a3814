package reports

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed dashboard
var dashboardFiles embed.FS

// asset is one embedded dashboard file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps a path below /dashboard/ to its file; "" is index.html.
var assets = loadAssets()

func loadAssets() map[string]*asset {
	m := map[string]*asset{}
	err := fs.WalkDir(dashboardFiles, "dashboard", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := dashboardFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		m[strings.TrimPrefix(p, "dashboard/")] = &asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil || m["index.html"] == nil {
		panic("BUG: reports: cannot load the embedded dashboard: " + errString(err))
	}
	m[""] = m["index.html"]
	return m
}

func errString(err error) string {
	if err == nil {
		return "index.html missing"
	}
	return err.Error()
}

// dashboardCSP allows only the dashboard's own files and API.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeDashboard serves the embedded dashboard under /dashboard/; a bare
// /dashboard redirects there. The pages need no authorization (they hold
// no data); the data comes from /v1/reports with the user's key.
func (h *Handler) ServeDashboard(ctx *fasthttp.RequestCtx) {
	p := string(ctx.Path())
	if p == "/dashboard" {
		ctx.Redirect("/dashboard/", fasthttp.StatusMovedPermanently)
		return
	}
	a := assets[strings.TrimPrefix(p, "/dashboard/")]
	if a == nil || !strings.HasPrefix(p, "/dashboard/") {
		writeError(ctx, &apiError{status: fasthttp.StatusNotFound, code: "not_found", message: "no such dashboard file"})
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		writeError(ctx, &apiError{status: fasthttp.StatusMethodNotAllowed, code: "method_not_allowed", message: "use GET"})
		return
	}
	hdr := &ctx.Response.Header
	hdr.Set("Content-Security-Policy", dashboardCSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 && bytes.Contains(inm, []byte(a.etag)) {
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}
	ctx.SetContentType(a.contentType)
	ctx.SetBody(a.body)
}
