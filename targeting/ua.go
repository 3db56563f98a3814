package targeting

import (
	"hash/maphash"
	"strings"
	"sync/atomic"
)

// User-Agent parsing: three ordered tables of tokens; the first token found
// in the string decides. Values are the targeting vocabulary (lower-case),
// "" when nothing matches. This is a small table for the common platforms,
// not a full device database.

type uaRule struct {
	token string
	value string
}

// uaOS is ordered so that specific platforms win over the generic tokens
// they also carry: Windows Phone and Chrome OS over Android and Linux,
// TV platforms over Linux, iPhone over "like Mac OS X".
var uaOS = []uaRule{
	{"Windows Phone", "windows"},
	{"CrOS", "chromeos"},
	{"Tizen", "tizen"},
	{"Web0S", "webos"},
	{"webOS", "webos"},
	{"Roku", "roku"},
	{"AppleTV", "tvos"},
	{"Apple TV", "tvos"},
	{"tvOS", "tvos"},
	{"Android", "android"},
	{"iPad", "ipados"},
	{"iPhone", "ios"},
	{"iPod", "ios"},
	{"Windows", "windows"},
	{"Macintosh", "macos"},
	{"Mac OS X", "macos"},
	{"Linux", "linux"},
}

// uaBrowser is ordered so that browsers built on Chromium, which also send
// "Chrome/" and "Safari/", are recognized first.
var uaBrowser = []uaRule{
	{"SamsungBrowser/", "samsung"},
	{"EdgA/", "edge"},
	{"EdgiOS/", "edge"},
	{"Edg/", "edge"},
	{"Edge/", "edge"},
	{"OPR/", "opera"},
	{"OPiOS/", "opera"},
	{"OPT/", "opera"},
	{"Opera", "opera"},
	{"FxiOS/", "firefox"},
	{"Firefox/", "firefox"},
	{"CriOS/", "chrome"},
	{"Chrome/", "chrome"},
	{"Chromium/", "chrome"},
	{"Safari/", "safari"}, // only on Apple platforms, see ParseUA
}

// uaCTV marks connected TVs, streaming sticks and consoles.
var uaCTV = []string{
	"SmartTV", "SMART-TV", "Smart-TV", "SmartTv", "Web0S", "NetCast", "HbbTV",
	"AppleTV", "Apple TV", "tvOS", "Roku", "BRAVIA", "CrKey", "GoogleTV",
	"Android TV", "AndroidTV", "; AFT", "Xbox", "PlayStation", "Nintendo",
}

// uaTablet marks tablets; an Android without "Mobi" is one too.
var uaTablet = []string{"iPad", "Tablet", "Kindle", "Silk/", "PlayBook"}

// uaMobile marks phones.
var uaMobile = []string{"Mobi", "iPhone", "iPod", "Windows Phone", "Opera Mini"}

// Device types, as the device_type attribute spells them.
const (
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceDesktop = "desktop"
	DeviceCTV     = "ctv"
)

// ParseUA extracts the os, browser and device type targeting values from a
// User-Agent header. Each is "" when the table does not recognize it. It
// does not allocate.
//
// os is one of android, ios, ipados, windows, macos, linux, chromeos, and
// for TVs tizen, webos, roku, tvos; browser one of chrome, safari,
// firefox, edge, samsung, opera; deviceType one of mobile, tablet, desktop,
// ctv. An iPad in Safari's default desktop mode sends a Mac User-Agent and
// is reported as macos, desktop.
func ParseUA(ua string) (os, browser, deviceType string) {
	os = firstRule(ua, uaOS)
	browser = firstRule(ua, uaBrowser)
	if browser == "safari" && !applePlatform(os) {
		browser = "" // Android's stock browser and web views also say Safari/
	}
	switch {
	case ua == "":
	case anyToken(ua, uaCTV):
		deviceType = DeviceCTV
	case anyToken(ua, uaTablet):
		deviceType = DeviceTablet
	case anyToken(ua, uaMobile):
		deviceType = DeviceMobile
	case os == "android":
		deviceType = DeviceTablet
	case os == "windows" || os == "macos" || os == "linux" || os == "chromeos":
		deviceType = DeviceDesktop
	}
	return os, browser, deviceType
}

func applePlatform(os string) bool {
	return os == "ios" || os == "ipados" || os == "macos"
}

func firstRule(ua string, rules []uaRule) string {
	for _, r := range rules {
		if strings.Contains(ua, r.token) {
			return r.value
		}
	}
	return ""
}

func anyToken(ua string, tokens []string) bool {
	for _, t := range tokens {
		if strings.Contains(ua, t) {
			return true
		}
	}
	return false
}

// uaCacheSlots is the size of ParseUACached's table (a power of two).
const uaCacheSlots = 4096

type uaEntry struct{ ua, os, browser, deviceType string }

var (
	uaCache     [uaCacheSlots]atomic.Pointer[uaEntry]
	uaCacheSeed = maphash.MakeSeed()
)

// ParseUACached is ParseUA through a table of the answers for recently
// seen User-Agents: traffic repeats a few thousand of them, and a hit costs
// a hash and a compare instead of the token scans. The table is a fixed
// array of slots indexed by a hash of the string, read and replaced
// atomically: no lock, and a miss allocates one entry.
func ParseUACached(ua string) (os, browser, deviceType string) {
	if ua == "" || len(ua) > 512 {
		return ParseUA(ua)
	}
	slot := &uaCache[maphash.String(uaCacheSeed, ua)&(uaCacheSlots-1)]
	if e := slot.Load(); e != nil && e.ua == ua {
		return e.os, e.browser, e.deviceType
	}
	os, browser, deviceType = ParseUA(ua)
	// ua may alias a request body: keep a copy.
	slot.Store(&uaEntry{ua: strings.Clone(ua), os: os, browser: browser, deviceType: deviceType})
	return os, browser, deviceType
}
