package doctor

import (
	"fmt"
	"strings"
	"time"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apps"
)

// neverPushedWarn is how long a registration may have had no push before
// that is worth a warning: a phone whose app is in use gets a push within
// a day (a message while it sleeps).
const neverPushedWarn = 24 * time.Hour

// checkPushHistory reports what became of the pushes to reg, the
// registration of --node, as its store keeps them (p2http.PushHistory):
// how many, and the last one's time and outcome; a last push that failed is
// a warning, with what to do about its reason.
//
// The database can be behind a running instance (the relay's push log): a
// node's first push is written within seconds, and a push whose outcome
// differs from the stored one within about two minutes, but the count and
// a later push of the stored kind of outcome up to p2http.PushTimePrecision
// late. The messages say so where it matters.
func (d *doctor) checkPushHistory(reg p2http.Registration) {
	const id = "push-history"
	app := string(reg.App.OrDefault())
	h := reg.PushHistory
	if !h.Recorded {
		d.ok(id, app, "none kept: the stateless mode keeps no history of the pushes to a registration; "+
			"p2http's metrics (p2http_pushes_total, p2http_upstream_errors_total) show what became of all pushes, by app and service")
		return
	}
	since := ""
	if !reg.CreatedAt.IsZero() {
		since = ", " + d.when(reg.CreatedAt)
	}
	if h.LastPushAt == nil {
		msg := "never pushed: the XMPP server has not pushed to this node since it registered" + since +
			"; p2http records a node's first push within seconds, so this is not the history lagging behind"
		fix := "check that the account's XMPP server pushes: push enabled for its users (Prosody: cloud_notify and smacks; " +
			"ejabberd: mod_push and mod_stream_mgmt; docs/p2xmpp.md), p2xmpp connected (p2xmpp doctor), " +
			"and what the server logs when a message reaches the sleeping phone (a push refused for a wrong secret is not counted)"
		if !reg.CreatedAt.IsZero() && d.now().Sub(reg.CreatedAt) > neverPushedWarn {
			d.warn(id, app, msg+": a phone in use is usually pushed within a day", fix)
			return
		}
		d.ok(id, app, msg+"; if the phone misses messages, "+fix)
		return
	}
	last := d.when(*h.LastPushAt)
	if h.LastOutcome == "" {
		// Pushed before the database kept outcomes (migration 3), and not
		// recorded since.
		d.ok(id, app, "last pushed at "+last+", before this database recorded what became of pushes; no push recorded since "+
			"(the database can be up to an hour behind a running instance)")
		return
	}
	count := fmt.Sprintf("%d push%s since it first registered%s", h.Pushes, pluralES(h.Pushes), since)
	// A push before the registration's last update went to the token the
	// phone had before it registered again: a new one, or the same (a
	// phone registers again at every start of its app).
	renewed := "before the phone registered again at " + d.when(reg.UpdatedAt) + " (with a new token, or the same)"
	svc := serviceName(reg.Service)

	if h.LastOutcome != p2http.PushFailed {
		msg := count + "; the last at " + last + " was "
		if h.LastOutcome == p2http.PushCoalesced {
			msg += "coalesced: merged into a push sent a moment later, whose own outcome shows once it is recorded"
		} else {
			msg += string(h.LastOutcome) + ": " + svc + " accepted it (if the phone still does not wake, look at the phone: " +
				"battery optimisation, the app's notification settings)"
		}
		if h.LastFailureAt != nil {
			msg += "; the last failure at " + d.when(*h.LastFailureAt) + ": " + h.LastFailureReason
			if h.LastFailureAt.Before(reg.UpdatedAt) {
				msg += ", " + renewed
			}
		}
		d.ok(id, app, msg+". This is the database's view: a running instance writes a failure since within about two minutes, "+
			"but the count and the time of the last push up to an hour late (GET /v1/registration on that instance shows every push)")
		return
	}

	reason := h.LastFailureReason
	if reason == "" {
		reason = "no reason recorded"
	}
	meaning, fix := failureAdvice(reason, reg, d.fieldNamer(app))
	msg := count + "; the last at " + last + " failed: " + reason
	if meaning != "" {
		msg += " (" + meaning + ")"
	}
	if h.LastPushAt.Before(reg.UpdatedAt) {
		msg += "; that was " + renewed + ", and no push is recorded since"
		if deadTokenReason(reason) || reason == invalidFCMToken {
			// The phone of a dead or malformed token gets a new one.
			fix = "probably nothing: the phone has another token since; the next push tells (run doctor --node again after it)"
		}
	}
	d.warn(id, app, msg+". A push delivered since would show here within about two minutes", fix)
}

// failureAdvice says what reason, a p2http.FailureReason recorded for a
// push to reg, means and what to do about it. The reasons are FCM's error
// codes and statuses, Apple's documented reasons, or p2http's own codes;
// an unknown one gets a generic fix and no meaning.
func failureAdvice(reason string, reg p2http.Registration, field apps.Namer) (meaning, fix string) {
	creds := field("fcm.credentials")
	sandbox, topic := field("apns.sandbox"), field("apns.topic")
	statusPages := "the service's status page (status.firebase.google.com, developer.apple.com/system-status)"
	switch {
	// FCM
	case reason == "QUOTA_EXCEEDED" || reason == "RESOURCE_EXHAUSTED":
		return "FCM's sending limit was exceeded: the project's, or the rate of messages to this one device",
			"it passes on its own (p2http retries within P2_PUSH_DEADLINE, and the XMPP server retries a wait); if it lasts, " +
				"look at how often the XMPP server pushes this node (P2_COALESCE_WINDOW merges bursts) and at the project's quota " +
				"for the Firebase Cloud Messaging API in the Google Cloud console"
	case reason == "THIRD_PARTY_AUTH_ERROR":
		return "FCM could not authenticate to APNs or Web Push with the project's credentials",
			"upload the iOS app's APNs authentication key (.p8, of the team that signs the app) in the Firebase console › " +
				"Project settings › Cloud Messaging › Apple app configuration"
	case reason == "SENDER_ID_MISMATCH":
		return "the token belongs to another Firebase project than the credentials of " + creds,
			"point " + creds + " at a service-account key of the Firebase project of the app's google-services.json " +
				"(the fcm-dry-run line checks it); while most pushes get SENDER_ID_MISMATCH, p2http keeps the registrations, " +
				"which are woken again once it is fixed"
	case reason == invalidFCMToken:
		return "FCM says the token is not a valid registration token",
			"nothing, if the phone's new token is a real one: p2http removes a registration whose token FCM finds malformed, and " +
				"kept this one because the phone registered again meanwhile; if the app keeps registering such tokens (another " +
				"service's, or cut short), the app must register the token FCM gives it"
	case reason == "INVALID_ARGUMENT":
		return "FCM refused the message as invalid",
			"see the fcm-dry-run line, which sends the same wake-up to the same token: if FCM takes it now, the failure has passed; " +
				"if not, report it with p2http's log of the push"
	case reason == "UNAUTHENTICATED" || reason == "PERMISSION_DENIED":
		return "FCM refused the credentials of " + creds,
			"see the fcm-auth and fcm-dry-run lines: the key was revoked, the service account lacks the role to send " +
				"(Firebase Cloud Messaging API Admin), or the Firebase Cloud Messaging API is not enabled for the project"
	case reason == "invalid_grant":
		return "Google's token endpoint refused the service account of " + creds + ": its key was deleted or has expired, " +
				"or this machine's clock is far off",
			"see the fcm-auth line: check the clock (timedatectl), then create a new key (Firebase console › Project settings › " +
				"Service accounts) and point " + creds + " at it"
	case oauthError(reason):
		return "Google's token endpoint refused the service account of " + creds,
			"see the fcm-auth line: " + creds + " must be a service-account key file of the app's Firebase project"
	case reason == "NOT_FOUND":
		return "FCM knows no such project or token",
			"see the fcm-dry-run line: " + creds + " must be a key of the app's Firebase project"
	case deadTokenReason(reason):
		return "the push service reported the token dead",
			"nothing: p2http removes a registration whose token is reported dead, and kept this one because the phone " +
				"registered again, with a new token, after the token died or while the push was under way; the next push goes to the new token"

	// APNs
	case reason == "BadDeviceToken":
		return "APNs says the token is not valid for the endpoint p2http pushes to: most often an app built for the sandbox " +
				"(installed from Xcode) pushed through production, or the reverse",
			"set " + sandbox + " to match the builds the phones run (see apns-environment): p2http keeps the registrations while " +
				"most pushes get BadDeviceToken; if only this phone, it must register again"
	case reason == "DeviceTokenNotForTopic":
		return "the token belongs to another app than the topic " + topic + " names",
			"set " + topic + " to the bundle id of the app the phones run (while most pushes get DeviceTokenNotForTopic, p2http " +
				"keeps the registrations); an app of another bundle id is an app of its own in P2_CONFIG (docs/apps.md)"
	case reason == "TopicDisallowed" || reason == "BadTopic" || reason == "MissingTopic":
		return "APNs refused the topic",
			"set " + topic + " to the app's bundle id, one the key's team may push to (the apns-auth line checks it)"
	case reason == "ExpiredProviderToken":
		return "APNs found the provider token p2http signed expired: this machine's clock is off",
			"synchronise the clock (timedatectl; chrony or systemd-timesyncd); the apns-auth line signs a token now and shows whether APNs takes it"
	case reason == "InvalidProviderToken" || reason == "MissingProviderToken" || reason == "UnrelatedKeyIdInToken" ||
		reason == "BadEnvironmentKeyIdInToken":
		return "APNs refused the provider token",
			"the key (" + field("apns.key") + "), its key id (" + field("apns.key_id") + ") and the team (" + field("apns.team_id") +
				") must belong together, and the key must not be revoked (the apns-auth line checks them)"
	case reason == "BadCertificate" || reason == "BadCertificateEnvironment" || reason == "Forbidden":
		return "APNs refused the certificate or its environment",
			"see the apns-auth and apns-environment lines: " + field("apns.cert") + " must be the app's push certificate, " +
				"valid, and of the environment " + sandbox + " chooses"
	case reason == "TooManyRequests":
		return "APNs asked p2http to slow down: too many pushes to this one device",
			"look at how often the XMPP server pushes this node; P2_COALESCE_WINDOW merges bursts"

	// p2http's own codes, and the services' temporary failures
	case reason == p2http.ERATELIMIT:
		return "p2http's own limit of pushes per domain refused it: the domain " + reg.Domain + " pushed more than P2_LIMIT_PUSH_DOMAIN allows",
			"raise P2_LIMIT_PUSH_DOMAIN if that domain's pushes are legitimate (a large server); otherwise find out why its server pushes so much"
	case reason == p2http.ETIMEOUT:
		return "the push service did not answer within P2_PUSH_DEADLINE",
			"check that this machine reaches " + serviceName(reg.Service) + " (the auth lines below reach it now): proxy, firewall, DNS, " +
				"IPv6 routes; then " + statusPages
	case reason == p2http.EUNAVAILABLE || reason == "UNAVAILABLE" || reason == "INTERNAL" ||
		reason == "InternalServerError" || reason == "ServiceUnavailable" || reason == "Shutdown":
		return "the push service was unavailable until the push deadline",
			"it passes on its own (p2http retries within P2_PUSH_DEADLINE, and the XMPP server retries a wait); if it lasts, see " +
				statusPages + " and p2http's log"
	case reason == p2http.ENOTFOUND:
		return "the instance that pushed does not serve the registration's app",
			"declare the app " + string(reg.App.OrDefault()) + " in P2_CONFIG on every instance"
	case reason == p2http.EUPSTREAM:
		return "the push service refused the request, without a reason p2http knows",
			"see the " + strings.ToLower(serviceName(reg.Service)) + " lines below, and p2http's log of the push (it logs the service's answer)"
	}
	return "", "see p2http's log of the push (it logs the service's answer) and the " +
		strings.ToLower(serviceName(reg.Service)) + " lines below"
}

// deadTokenReason reports whether reason is a push service's report of a
// dead token, which removes the registration unless it was renewed during
// the push.
func deadTokenReason(reason string) bool {
	return reason == "UNREGISTERED" || reason == "Unregistered" || reason == "ExpiredToken"
}

// oauthError reports whether reason is one of RFC 6749's error codes, which
// the token endpoint answers a refused service account with (fcm).
func oauthError(reason string) bool {
	switch reason {
	case "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope":
		return true
	}
	return false
}

// invalidFCMToken is the reason of a token FCM finds malformed: one
// phone's, which a new token does not meet.
const invalidFCMToken = "INVALID_ARGUMENT: not a valid FCM registration token"

// fieldNamer names the settings of app in messages.
func (d *doctor) fieldNamer(app string) apps.Namer {
	if app == string(p2http.DefaultApp) {
		if d.cfg.DefaultName != nil {
			return d.cfg.DefaultName
		}
		return func(field string) string { return field }
	}
	return apps.FileNamer(app)
}

// when is t in UTC to the second, and how long before now:
// "2025-03-04 10:11:12 UTC (3 hours ago)".
func (d *doctor) when(t time.Time) string {
	s := t.UTC().Format(time.DateTime) + " UTC"
	ago := d.now().Sub(t)
	switch {
	case ago < 0:
		return s
	case ago < time.Minute:
		return s + " (less than a minute ago)"
	case ago < time.Hour:
		n := int(ago / time.Minute)
		return fmt.Sprintf("%s (%d minute%s ago)", s, n, plural(n))
	case ago < 48*time.Hour:
		n := int(ago / time.Hour)
		return fmt.Sprintf("%s (%d hour%s ago)", s, n, plural(n))
	}
	return fmt.Sprintf("%s (%d days ago)", s, int(ago/(24*time.Hour)))
}

// pluralES is "es" unless n is 1.
func pluralES(n int64) string {
	if n == 1 {
		return ""
	}
	return "es"
}
