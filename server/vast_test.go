package server

import (
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/adserver/adserver/campaign"
)

// Inline VAST gets this server's impression and click trackers, in the
// places a VAST player reads them, and stays well-formed XML.
func TestVASTMarkupInline(t *testing.T) {
	const imp, click = "http://ads.example/v1/t/imp?a=1&sig=x", "http://ads.example/v1/t/click?a=1&sig=y"
	cases := []struct {
		name, in string
		want     []string // substrings of the output, in order
		imps     int
		clicks   int
	}{
		{
			name: "inline with AdSystem and VideoClicks",
			in: `<VAST version="4.0"><Ad id="1"><InLine><AdSystem>adv</AdSystem><AdTitle>t</AdTitle>` +
				`<Impression><![CDATA[https://adv.example/imp]]></Impression><Creatives><Creative><Linear>` +
				`<VideoClicks><ClickThrough><![CDATA[https://adv.example/]]></ClickThrough></VideoClicks>` +
				`</Linear></Creative></Creatives></InLine></Ad></VAST>`,
			want:   []string{"<AdTitle>t</AdTitle><Impression><![CDATA[" + imp + "]]></Impression><Impression><![CDATA[https://adv.example/imp", "<VideoClicks><ClickTracking><![CDATA[" + click + "]]></ClickTracking><ClickThrough>"},
			imps:   2,
			clicks: 1,
		},
		{
			name:   "wrapper with attributes, no AdSystem, whitespace",
			in:     "<VAST version=\"4.1\">\n <Ad>\n  <Wrapper followAdditionalWrappers=\"true\">\n   <VASTAdTagURI>https://x/</VASTAdTagURI>\n  </Wrapper>\n </Ad>\n</VAST>",
			want:   []string{`<Wrapper followAdditionalWrappers="true"><Impression><![CDATA[` + imp + `]]></Impression>`},
			imps:   1,
			clicks: 0,
		},
		{
			name:   "two ads (a pod), self-closing VideoClicks left alone",
			in:     `<VAST version="4.0"><Ad><InLine><AdSystem>a</AdSystem><Creatives><Creative><Linear><VideoClicks/></Linear></Creative></Creatives></InLine></Ad><Ad><InLine><AdSystem>b</AdSystem></InLine></Ad></VAST>`,
			want:   []string{"<AdSystem>a</AdSystem><Impression>", "<VideoClicks/>", "<AdSystem>b</AdSystem><Impression>"},
			imps:   2,
			clicks: 0,
		},
		{
			name: "no ad element: unchanged",
			in:   `<VAST version="4.0"/>`,
			want: []string{`<VAST version="4.0"/>`},
		},
	}
	for _, tc := range cases {
		cr := &campaign.Creative{ID: "cr", Format: campaign.FormatVideo, VASTXML: tc.in}
		got := vastMarkup(cr, click, imp)
		rest := got
		for _, w := range tc.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("%s: %q not found (in order) in\n%s", tc.name, w, got)
				break
			}
			rest = rest[i+len(w):]
		}
		if n := strings.Count(got, "<Impression>"); n != tc.imps {
			t.Errorf("%s: %d Impression elements, want %d:\n%s", tc.name, n, tc.imps, got)
		}
		if n := strings.Count(got, "<ClickTracking>"); n != tc.clicks {
			t.Errorf("%s: %d ClickTracking elements, want %d:\n%s", tc.name, n, tc.clicks, got)
		}
		d := xml.NewDecoder(strings.NewReader(got))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Errorf("%s: not well-formed: %v\n%s", tc.name, err, got)
				}
				break
			}
		}
	}
}

// Injecting trackers only ever inserts them: taking them out again gives
// back the advertiser's markup byte for byte, whatever it is.
func FuzzInjectVASTTrackers(f *testing.F) {
	f.Add(`<VAST><Ad><InLine><AdSystem>a</AdSystem><Creatives><Creative><Linear><VideoClicks></VideoClicks></Linear></Creative></Creatives></InLine></Ad></VAST>`)
	f.Add(`<Wrapper a="b"><InLine/><VideoClicks/><InLineX><AdSystem></Wrapper>`)
	f.Add(`<InLine`)
	const imp, click = "\x00imp\x00", "\x00click\x00"
	f.Fuzz(func(t *testing.T, x string) {
		if strings.Contains(x, "\x00") {
			return
		}
		got := string(injectVASTTrackers(nil, x, click, imp))
		back := strings.ReplaceAll(got, "<Impression><![CDATA["+imp+"]]></Impression>", "")
		back = strings.ReplaceAll(back, "<ClickTracking><![CDATA["+click+"]]></ClickTracking>", "")
		if back != x {
			t.Fatalf("markup changed:\nin  %q\nout %q", x, got)
		}
	})
}

// appendJSONString writes, for any string, a JSON string that decodes to
// what encoding/json's does (invalid UTF-8 becomes U+FFFD in both) and is
// HTML-safe: the ad response carries advertisers' markup through it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `<a href='x?a=1&b=2'>"q"\</a>`, "tab\tnl\nnul\x00\f\b", "\u2028\u2029é漢", "\xff\xfe bad utf-8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var want, got string
		if err := json.Unmarshal(ref, &want); err != nil {
			t.Fatal(err)
		}
		out := appendJSONString(nil, s)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("appendJSONString(%q) = %s: not JSON: %v", s, out, err)
		}
		if got != want {
			t.Fatalf("appendJSONString(%q) = %s decodes to %q, want %q", s, out, got, want)
		}
		if strings.ContainsAny(string(out), "<>&\u2028\u2029") {
			t.Fatalf("appendJSONString(%q) = %s is not HTML-safe", s, out)
		}
	})
}
