package targeting

import (
	"slices"
	"strconv"
	"sync"
	"testing"
)

var uaCases = []struct {
	name, ua            string
	os, browser, device string
}{
	{"chrome android phone", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36", "android", "chrome", "mobile"},
	{"chrome android tablet", "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "android", "chrome", "tablet"},
	{"samsung internet", "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", "android", "samsung", "mobile"},
	{"android webview stock", "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30", "android", "", "mobile"},
	{"edge android", "Mozilla/5.0 (Linux; Android 10; HD1913) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36 EdgA/126.0.2592.80", "android", "edge", "mobile"},
	{"opera android", "Mozilla/5.0 (Linux; Android 10; VOG-L29) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 OPR/82.0.0.0", "android", "opera", "mobile"},
	{"firefox android", "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0", "android", "firefox", "mobile"},
	{"safari iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "ios", "safari", "mobile"},
	{"chrome iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.108 Mobile/15E148 Safari/604.1", "ios", "chrome", "mobile"},
	{"firefox iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15", "ios", "firefox", "mobile"},
	{"edge iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 EdgiOS/126.0.2592.86 Mobile/15E148 Safari/605.1.15", "ios", "edge", "mobile"},
	{"in-app iphone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "ios", "", "mobile"},
	{"safari ipad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "ipados", "safari", "tablet"},
	{"chrome ipad", "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.108 Mobile/15E148 Safari/604.1", "ipados", "chrome", "tablet"},
	{"chrome windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "windows", "chrome", "desktop"},
	{"edge windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87", "windows", "edge", "desktop"},
	{"legacy edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19582", "windows", "edge", "desktop"},
	{"firefox windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0", "windows", "firefox", "desktop"},
	{"opera windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 OPR/111.0.0.0", "windows", "opera", "desktop"},
	{"safari mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "macos", "safari", "desktop"},
	{"chrome mac", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "macos", "chrome", "desktop"},
	{"firefox linux", "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "linux", "firefox", "desktop"},
	{"chrome linux", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "linux", "chrome", "desktop"},
	{"chromebook", "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", "chromeos", "chrome", "desktop"},
	{"samsung tv", "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) 76.0.3809.146/6.0 TV Safari/537.36", "tizen", "", "ctv"},
	{"lg tv", "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/79.0.3945.79 Safari/537.36 WebAppManager", "webos", "chrome", "ctv"},
	{"roku", "Roku/DVP-12.5 (12.5.0.4178-88)", "roku", "", "ctv"},
	{"apple tv", "AppleCoreMedia/1.0.0.21L569 (Apple TV; U; CPU OS 17_5 like Mac OS X; en_us)", "tvos", "", "ctv"},
	{"fire tv", "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36", "android", "chrome", "ctv"},
	{"chromecast", "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/96.0.4664.110 Safari/537.36 CrKey/1.56.500000", "linux", "chrome", "ctv"},
	{"xbox", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", "windows", "edge", "ctv"},
	{"kindle fire", "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/126.3.1 like Chrome/126.0.6478.71 Safari/537.36", "android", "chrome", "tablet"},
	{"windows phone", "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063", "windows", "edge", "mobile"},
	{"curl", "curl/8.5.0", "", "", ""},
	{"empty", "", "", "", ""},
}

func TestParseUA(t *testing.T) {
	for _, tt := range uaCases {
		os, br, dev := ParseUA(tt.ua)
		if os != tt.os || br != tt.browser || dev != tt.device {
			t.Errorf("%s: got (%q, %q, %q), want (%q, %q, %q)", tt.name, os, br, dev, tt.os, tt.browser, tt.device)
		}
	}
}

var (
	uaOSValues      = []string{"", "android", "ios", "ipados", "windows", "macos", "linux", "chromeos", "tizen", "webos", "roku", "tvos"}
	uaBrowserValues = []string{"", "chrome", "safari", "firefox", "edge", "samsung", "opera"}
	uaDeviceValues  = []string{"", DeviceMobile, DeviceTablet, DeviceDesktop, DeviceCTV}
)

func FuzzParseUA(f *testing.F) {
	for _, tt := range uaCases {
		f.Add(tt.ua)
	}
	f.Fuzz(func(t *testing.T, ua string) {
		os, br, dev := ParseUA(ua)
		if !slices.Contains(uaOSValues, os) || !slices.Contains(uaBrowserValues, br) || !slices.Contains(uaDeviceValues, dev) {
			t.Fatalf("ParseUA(%q) = (%q, %q, %q): outside the vocabulary", ua, os, br, dev)
		}
		if ua == "" && (os != "" || br != "" || dev != "") {
			t.Fatal("empty User-Agent should give nothing")
		}
	})
}

// The cached parse answers exactly what ParseUA does: for every case, on a
// miss and on a hit, from goroutines racing on the same slots.
func TestParseUACached(t *testing.T) {
	check := func(t *testing.T, ua, name string) {
		os, br, dev := ParseUA(ua)
		cos, cbr, cdev := ParseUACached(ua)
		if cos != os || cbr != br || cdev != dev {
			t.Errorf("%s: cached (%q, %q, %q), ParseUA (%q, %q, %q)", name, cos, cbr, cdev, os, br, dev)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 50 {
				for i, tt := range uaCases {
					// Distinct strings that collide in the table now and then.
					ua := tt.ua
					if (i+round+g)%3 == 0 && ua != "" {
						ua += " r" + strconv.Itoa(round%7)
					}
					check(t, ua, tt.name)
				}
			}
		}()
	}
	wg.Wait()
}
