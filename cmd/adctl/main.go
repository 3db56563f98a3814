// Command adctl is the operator's command line for an adserver's
// management API.
//
//	adctl [-admin URL] [-token T] campaigns put FILE... | get ID | list [-advertiser ID] | delete ID
//	adctl placements put FILE... | get ID
//	adctl advertisers put FILE... | get ID
//	adctl switch get | set serving=on|off charging=on|off sample=F pause-campaign=ID unpause-campaign=ID pause-advertiser=ID ...
//	adctl reports [-from D] [-to D] [-group-by day,campaign] [-format json|csv]
//
// A FILE holds one JSON object, or a JSON array of objects, each with its
// "id". The admin token comes from -token, $ADSERVER_ADMIN_TOKEN, or
// ./data/admin-token.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const usage = `usage: adctl [-admin URL] [-token T] RESOURCE VERB [ARGS]
  campaigns   put FILE... | get ID | list [-advertiser ID] | delete ID
  placements  put FILE... | get ID
  advertisers put FILE... | get ID
  switch      get | set KEY=VALUE...  (serving=off, charging=off, sample=0.05, pause-campaign=c-1,
              unpause-campaign=c-1, pause-advertiser=adv-1, unpause-advertiser=adv-1; "adctl switch set" lists all)
  reports     [-from YYYY-MM-DD] [-to YYYY-MM-DD] [-group-by day,campaign] [-format json|csv] [-advertiser ID]
`

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "adctl:", err)
		os.Exit(1)
	}
}

type client struct {
	base  string
	token string
	http  *http.Client
	out   io.Writer
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("adctl", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	admin := fs.String("admin", envOr("ADSERVER_ADMIN_URL", "http://127.0.0.1:8081"), "management listener base URL")
	token := fs.String("token", "", "admin token (default $ADSERVER_ADMIN_TOKEN or ./data/admin-token)")
	dataDir := fs.String("data-dir", "./data", "data directory to read admin-token from")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv("ADSERVER_ADMIN_TOKEN")
	}
	if *token == "" {
		if b, err := os.ReadFile(*dataDir + "/admin-token"); err == nil {
			*token = strings.TrimSpace(string(b))
		}
	}
	c := &client{base: strings.TrimRight(*admin, "/"), token: *token, http: &http.Client{Timeout: 30 * time.Second}, out: out}
	rest := fs.Args()
	if len(rest) < 1 {
		fs.Usage()
		return errors.New("missing resource")
	}
	res, rest := rest[0], rest[1:]
	switch res {
	case "campaigns", "placements", "advertisers":
		return c.catalog(res, rest)
	case "switches", "switch":
		return c.switches(rest)
	case "reports", "report":
		return c.reports(rest)
	}
	fs.Usage()
	return fmt.Errorf("unknown resource %q", res)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (c *client) catalog(res string, args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%s: missing verb (put, get, list, delete)", res)
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "put":
		if len(args) == 0 {
			return fmt.Errorf("%s put: name at least one JSON file", res)
		}
		for _, f := range args {
			if err := c.putFile(res, f); err != nil {
				return err
			}
		}
		return nil
	case "get":
		if len(args) != 1 {
			return fmt.Errorf("%s get: name one id", res)
		}
		return c.do("GET", "/v1/"+res+"/"+url.PathEscape(args[0]), nil)
	case "delete":
		if len(args) != 1 || res != "campaigns" {
			return fmt.Errorf("delete takes one campaign id")
		}
		if err := c.do("DELETE", "/v1/campaigns/"+url.PathEscape(args[0]), nil); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "deleted", args[0])
		return nil
	case "list":
		if res != "campaigns" {
			return fmt.Errorf("only campaigns can be listed")
		}
		fs := flag.NewFlagSet("list", flag.ContinueOnError)
		adv := fs.String("advertiser", "", "only this advertiser's campaigns")
		if err := fs.Parse(args); err != nil {
			return err
		}
		q := url.Values{}
		if *adv != "" {
			q.Set("advertiser_id", *adv)
		}
		return c.do("GET", "/v1/campaigns?"+q.Encode(), nil)
	}
	return fmt.Errorf("%s: unknown verb %q", res, verb)
}

// putFile PUTs each object of a file (one object or an array).
func (c *client) putFile(res, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var objs []json.RawMessage
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &objs); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	} else {
		objs = []json.RawMessage{b}
	}
	for i, o := range objs {
		var head struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(o, &head); err != nil || head.ID == "" {
			return fmt.Errorf("%s: object %d has no \"id\"", path, i)
		}
		out := c.out
		c.out = io.Discard // one line per record instead of the stored JSON
		err := c.do("PUT", "/v1/"+res+"/"+url.PathEscape(head.ID), o)
		c.out = out
		if err != nil {
			return fmt.Errorf("%s %s: %w", res, head.ID, err)
		}
		fmt.Fprintf(c.out, "put %s/%s\n", res, head.ID)
	}
	return nil
}

func (c *client) switches(args []string) error {
	if len(args) == 0 || args[0] == "get" {
		if len(args) > 1 {
			return errors.New("switch get takes no arguments")
		}
		return c.do("GET", "/v1/switches", nil)
	}
	if args[0] != "set" {
		return fmt.Errorf("switch: unknown verb %q\n%s", args[0], switchUsage)
	}
	body, err := switchPatch(args[1:])
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do("PUT", "/v1/switches", b)
}

const switchUsage = `usage: adctl switch get
       adctl switch set KEY=VALUE...
  serving=on|off                stop or resume all serving (off: every ad request answers 204)
  charging=on|off               off: beacons are recorded but budgets are not charged (test traffic)
  sample=0.05                   decision-log sampling rate in [0, 1] (also decision_log_sample=)
  pause-campaign=ID[,ID...]     pause campaigns (unpause-campaign= to resume)
  pause-advertiser=ID[,ID...]   pause every campaign of advertisers (unpause-advertiser= to resume)
  paused-campaigns=ID,...       replace the whole set of paused campaigns ("" to clear;
  paused-advertisers=ID,...     pause-/unpause- compose better with other operators' changes)`

// switchPatch turns KEY=VALUE arguments into the body of PUT /v1/switches.
func switchPatch(args []string) (map[string]any, error) {
	if len(args) == 0 {
		return nil, errors.New("switch set: name at least one KEY=VALUE\n" + switchUsage)
	}
	body := map[string]any{}
	lists := map[string][]string{}
	for _, kv := range args {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("switch set: %q is not KEY=VALUE\n%s", kv, switchUsage)
		}
		k = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(k)), "_", "-")
		v = strings.TrimSpace(v)
		switch k {
		case "serving", "charging":
			on, err := parseOnOff(v)
			if err != nil {
				return nil, fmt.Errorf("switch set %s: %w", k, err)
			}
			body[k] = on
		case "sample", "decision-log-sample":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return nil, fmt.Errorf("switch set %s: want a number from 0 to 1, got %q", k, v)
			}
			body["decision_log_sample"] = f
		case "pause-campaign", "pause-campaigns", "unpause-campaign", "unpause-campaigns",
			"pause-advertiser", "pause-advertisers", "unpause-advertiser", "unpause-advertisers",
			"paused-campaigns", "paused-advertisers":
			field := strings.ReplaceAll(k, "-", "_")
			if !strings.HasSuffix(field, "s") {
				field += "s"
			}
			ids := splitIDs(v)
			if len(ids) == 0 && !strings.HasPrefix(field, "paused_") {
				return nil, fmt.Errorf("switch set %s: name at least one id", k)
			}
			if lists[field] == nil {
				lists[field] = []string{}
			}
			lists[field] = append(lists[field], ids...)
		default:
			return nil, fmt.Errorf("switch set: unknown switch %q\n%s", k, switchUsage)
		}
	}
	for field, ids := range lists {
		body[field] = ids
	}
	return body, nil
}

func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "1", "yes":
		return true, nil
	case "off", "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("want on or off, got %q", v)
}

func splitIDs(v string) []string {
	ids := []string{}
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			ids = append(ids, s)
		}
	}
	return ids
}

func (c *client) reports(args []string) error {
	fs := flag.NewFlagSet("reports", flag.ContinueOnError)
	from := fs.String("from", time.Now().UTC().AddDate(0, 0, -7).Format("2006-01-02"), "first day")
	to := fs.String("to", time.Now().UTC().Format("2006-01-02"), "last day")
	groupBy := fs.String("group-by", "day", "comma-separated: day, hour, campaign, creative, placement, country")
	format := fs.String("format", "json", "json or csv")
	adv := fs.String("advertiser", "", "advertiser id (admin token only)")
	tz := fs.String("tz", "", "time zone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	q := url.Values{"from": {*from}, "to": {*to}, "group_by": {*groupBy}, "format": {*format}}
	if *adv != "" {
		q.Set("advertiser_id", *adv)
	}
	if *tz != "" {
		q.Set("tz", *tz)
	}
	return c.do("GET", "/v1/reports?"+q.Encode(), nil)
}

// do sends one request and prints the answer; a server error is returned
// with the server's own message.
func (c *client) do(method, path string, body []byte) error {
	req, err := http.NewRequest(method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the adserver at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code, Message, Field string
			} `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			msg := e.Error.Message
			if e.Error.Field != "" && !strings.HasPrefix(msg, e.Error.Field) {
				msg = e.Error.Field + ": " + msg
			}
			return fmt.Errorf("%s (HTTP %d, %s)", msg, resp.StatusCode, e.Error.Code)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if len(b) > 0 {
		var pretty bytes.Buffer
		if json.Indent(&pretty, b, "", "  ") == nil {
			b = append(pretty.Bytes(), '\n')
		}
		c.out.Write(b)
	}
	return nil
}
