package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSwitchPatch(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // JSON, or "error: substring"
	}{
		{[]string{"serving=off"}, `{"serving":false}`},
		{[]string{"serving=on", "charging=false", "sample=0.05"}, `{"charging":false,"decision_log_sample":0.05,"serving":true}`},
		{[]string{"pause-campaign=c-1,c-2", "pause-campaign=c-3", "unpause_advertiser=adv-1"},
			`{"pause_campaigns":["c-1","c-2","c-3"],"unpause_advertisers":["adv-1"]}`},
		{[]string{"paused-campaigns="}, `{"paused_campaigns":[]}`},
		{[]string{"decision_log_sample=1"}, `{"decision_log_sample":1}`},
		{[]string{"serving=maybe"}, `error: want on or off, got "maybe"`},
		{[]string{"sample=1.5"}, `error: want a number from 0 to 1`},
		{[]string{"pause-campaign="}, `error: name at least one id`},
		{[]string{"servin=off"}, `error: unknown switch "servin"`},
		{[]string{"serving"}, `error: is not KEY=VALUE`},
		{nil, `error: name at least one KEY=VALUE`},
	} {
		body, err := switchPatch(tc.args)
		if msg, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), msg) {
				t.Errorf("%v: error %v, want one containing %q", tc.args, err, msg)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
			continue
		}
		if b, _ := json.Marshal(body); string(b) != tc.want {
			t.Errorf("%v: %s, want %s", tc.args, b, tc.want)
		}
	}
}

func TestSwitchSetTalksToTheAPI(t *testing.T) {
	var gotBody, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody, gotAuth = string(b), r.Header.Get("Authorization")
		if r.Method != "PUT" || r.URL.Path != "/v1/switches" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if strings.Contains(gotBody, "bad") {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"code":"invalid_id","message":"must be printable ASCII","field":"pause_campaigns[0]"}}`)
			return
		}
		io.WriteString(w, `{"serving":false}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run([]string{"-admin", srv.URL, "-token", "tok", "switch", "set", "serving=off"}, &out); err != nil {
		t.Fatal(err)
	}
	if gotBody != `{"serving":false}` || gotAuth != "Bearer tok" || !strings.Contains(out.String(), `"serving": false`) {
		t.Fatalf("body %s, auth %q, output %q", gotBody, gotAuth, out.String())
	}
	err := run([]string{"-admin", srv.URL, "-token", "tok", "switch", "set", "pause-campaign=bad"}, &out)
	if err == nil || err.Error() != "pause_campaigns[0]: must be printable ASCII (HTTP 400, invalid_id)" {
		t.Fatalf("error %v", err)
	}
}
