package doctor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/p2http/p2http"
	"github.com/p2http/p2http/apns"
	"github.com/p2http/p2http/apps"
	"github.com/p2http/p2http/fcm"
	"github.com/p2http/p2http/internal/checkup"
)

// The tokens the probes send to: made up, so that they cannot belong to a
// phone. FCM refuses probeFCMToken as not a valid registration token; APNs
// answers probeAPNsToken (32 zero bytes in hex) BadDeviceToken, but only
// once it accepted the credentials and the topic.
const (
	probeFCMToken  = "p2http-doctor-probe:not-a-registration-token"
	probeAPNsToken = "0000000000000000000000000000000000000000000000000000000000000000"
	// probeDevice is the device hash the probes carry.
	probeDevice = "0000000000000000000000000000000000000000"
)

// app is one app to check.
type app struct {
	name string
	cfg  apps.Config
	// field names a field of its settings in messages.
	field apps.Namer
}

// apps returns the default app, then the further ones by name.
func (d *doctor) apps() []app {
	out := []app{{name: string(p2http.DefaultApp), cfg: d.cfg.Default, field: d.cfg.DefaultName}}
	names := make([]string, 0, len(d.cfg.Apps))
	for name := range d.cfg.Apps {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		out = append(out, app{name: name, cfg: d.cfg.Apps[name], field: apps.FileNamer(name)})
	}
	return out
}

// checkPush checks every app's push services, with the token of --token or
// of reg, the registration of --node, where it belongs.
func (d *doctor) checkPush(ctx context.Context, reg *p2http.Registration) {
	if d.cfg.DefaultName == nil {
		d.cfg.DefaultName = func(field string) string { return field }
	}
	all := d.apps()
	configured := 0
	for _, a := range all {
		if a.cfg.FCMConfigured() {
			configured++
		}
		if a.cfg.APNsConfigured() {
			configured++
		}
	}
	switch {
	case d.cfg.Dev:
		d.warn("push-services", "", "P2_DEV is set: pushes for services without credentials are logged, not sent",
			"unset P2_DEV anywhere phones depend on it")
	case configured == 0:
		d.fail("push-services", "", "no app has FCM or APNs credentials: the service refuses every registration (service-not-configured)",
			"set P2_FCM_CREDENTIALS for Android, or P2_APNS_KEY, P2_APNS_KEY_ID, P2_APNS_TEAM_ID and P2_APNS_TOPIC for iOS")
	default:
		d.ok("push-services", "", fmt.Sprintf("%d service%s configured in %d app%s", configured, plural(configured), len(all), plural(len(all))))
	}

	// The token to check, and where.
	token, tokenApp, tokenService, device := d.o.Token, d.o.App, p2http.FCM, probeDevice
	if tokenApp == "" {
		tokenApp = string(p2http.DefaultApp)
	}
	if reg != nil {
		token, tokenApp, tokenService, device = reg.Token, string(reg.App.OrDefault()), reg.Service, reg.Device
	}
	tokenChecked := token == ""
	for _, a := range all {
		mine := a.name == tokenApp
		if a.cfg.FCMConfigured() {
			t := ""
			if mine && tokenService == p2http.FCM {
				t, tokenChecked = token, true
			}
			d.checkFCM(ctx, a, t, device)
		}
		if a.cfg.APNsConfigured() {
			d.checkAPNs(ctx, a)
			if mine && tokenService == p2http.APNs && token != "" {
				tokenChecked = true
				d.warn("apns-token", a.name, "APNs has no dry run, so "+d.tokenName()+" was not sent: a push would reach the phone",
					"apns-auth checked the credentials and topic; if pushes to this token fail with BadDeviceToken, the app's build and "+
						a.field("apns.sandbox")+" do not match (see apns-environment)")
			}
		}
	}
	if !tokenChecked {
		id, what := "fcm-dry-run", "--token"
		if reg != nil {
			id, what = "registration", "the registration's token"
		}
		d.fail(id, tokenApp, fmt.Sprintf("%s is an %s token of the app %s, which has no %s credentials here: its pushes fail with service-not-configured",
			what, serviceName(tokenService), tokenApp, serviceName(tokenService)),
			"configure the app's "+serviceName(tokenService)+" credentials, or, for --token, name its app with --app")
	}
}

// checkFCM checks an app's FCM credentials — an access token — and a dry
// run of the wake-up of device to token, or to a made-up token when token
// is empty.
func (d *doctor) checkFCM(ctx context.Context, a app, token, device string) {
	creds := a.field("fcm.credentials")
	s, err := apps.NewFCM(ctx, a.cfg, a.field, d.cfg.HTTPClient)
	if err != nil {
		d.fail("fcm-auth", a.name, explain(err), "point "+creds+" at the service account's key file (JSON): "+
			"Firebase console › Project settings › Service accounts › Generate new private key")
		d.untested(a, token)
		return
	}
	project := s.ProjectID()
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	if err := s.Authenticate(cctx); err != nil {
		if p2http.ErrorCode(err) == p2http.EUPSTREAM {
			d.fail("fcm-auth", a.name, "the OAuth2 token endpoint refused the service account of "+creds+" (project "+project+"): "+cause(err),
				"the key was deleted or revoked, or this machine's clock is off by minutes: check the clock (timedatectl), then create "+
					"a new key (Firebase console › Project settings › Service accounts) and point "+creds+" at it")
		} else {
			d.fail("fcm-auth", a.name, "could not fetch an OAuth2 access token: "+explain(err),
				"check that this machine reaches the token endpoint (oauth2.googleapis.com:443): proxy, firewall, DNS")
		}
		d.untested(a, token)
		return
	}
	d.ok("fcm-auth", a.name, "the service account of "+creds+" gets an OAuth2 access token for the project "+project)

	probe := token == ""
	w := p2http.Wakeup{Token: token, Device: device, Important: true}
	if probe {
		w.Token = probeFCMToken
	}
	err = s.SendDryRun(cctx, w)
	var (
		dead *p2http.DeadTokenError
		se   *fcm.StatusError
	)
	errors.As(err, &se)
	switch {
	case err == nil && probe:
		d.ok("fcm-dry-run", a.name, "FCM accepts the wake-up for the project "+project+" (dry run: nothing was delivered)")
	case err == nil:
		d.ok("fcm-dry-run", a.name, "FCM accepts the wake-up to "+d.tokenName()+" for the project "+project+
			" (dry run, validate_only: nothing reached the phone)")
	case errors.As(err, &dead) && probe:
		d.ok("fcm-dry-run", a.name, "FCM accepts the project "+project+"'s messages: a dry run to a made-up token was refused for the token alone ("+
			dead.Reason+"); --token or --node checks a phone's token")
	case errors.As(err, &dead) && dead.Reason == "UNREGISTERED":
		d.fail("fcm-dry-run", a.name, "FCM says "+d.tokenName()+" is not registered (UNREGISTERED): the app was uninstalled, "+
			"its data cleared, or it holds a newer token", "nothing on the server: the phone must register again (open the app); "+
			"p2http removes such a registration at its next push")
	case errors.As(err, &dead) && dead.Reason == "SENDER_ID_MISMATCH", se != nil && se.ErrorCode == "SENDER_ID_MISMATCH":
		// The sender answers EUPSTREAM, not a dead token, while it has seen
		// no push accepted (fcm's judge): the same finding.
		d.fail("fcm-dry-run", a.name, d.tokenName()+" belongs to another Firebase project than "+project+" (SENDER_ID_MISMATCH)",
			creds+" must be a service account of the project in the app's google-services.json; with several apps, check which app the token is of")
	case errors.As(err, &dead):
		d.fail("fcm-dry-run", a.name, "FCM says "+d.tokenName()+" is not a valid registration token ("+dead.Reason+")",
			"check that the token was copied whole: it comes from the app, not from the Firebase console")
	case se != nil && (se.HTTPStatus == http.StatusForbidden || se.Status == "PERMISSION_DENIED"):
		d.fail("fcm-dry-run", a.name, "FCM does not let the service account send for the project "+project+": "+explain(err),
			"in the Google Cloud console of "+project+", enable the Firebase Cloud Messaging API and give the service account "+
				"the role Firebase Cloud Messaging API Admin")
	case se != nil && se.HTTPStatus == http.StatusNotFound:
		d.fail("fcm-dry-run", a.name, "FCM knows no project "+project+": "+explain(err),
			"the project_id in "+creds+" must be the Firebase project's (Project settings › General)")
	case p2http.ErrorCode(err) == p2http.EUPSTREAM:
		d.fail("fcm-dry-run", a.name, "FCM refused the dry run: "+explain(err), "FCM refused the message p2http sends; report it with this line")
	default:
		d.fail("fcm-dry-run", a.name, "could not reach FCM: "+explain(err),
			"check that this machine reaches fcm.googleapis.com:443 ("+a.field("fcm.endpoint")+" overrides it): proxy, firewall, DNS; "+
				"FCM answers 503 during outages: try again later")
	}
}

// untested reports that token, when one was given, could not be checked.
func (d *doctor) untested(a app, token string) {
	if token != "" {
		d.warn("fcm-dry-run", a.name, d.tokenName()+" was not checked: there is no access token", "fix fcm-auth first")
	}
}

// apnsEndpoint is where an app's APNs pushes go.
func apnsEndpoint(n apps.APNs) string {
	switch {
	case n.Endpoint != "":
		return n.Endpoint
	case n.Sandbox:
		return apns.SandboxEndpoint
	}
	return apns.ProductionEndpoint
}

// host is the host of an endpoint URL, for messages.
func host(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return endpoint
}

// apnsReason is Apple's reason in err, if any.
func apnsReason(err error) string {
	var se *apns.StatusError
	if errors.As(err, &se) {
		return se.Reason
	}
	var dead *p2http.DeadTokenError
	if errors.As(err, &dead) {
		return dead.Reason
	}
	return ""
}

// checkAPNs checks an app's APNs credentials and topic with a push to a
// device token that cannot exist, which Apple answers BadDeviceToken only
// once it accepted both; then the environment (sandbox or production).
func (d *doctor) checkAPNs(ctx context.Context, a app) {
	n := a.cfg.APNs
	credField, creds := a.field("apns.key"), fmt.Sprintf("the provider token of key %s of team %s", n.KeyID, n.TeamID)
	if n.Key == "" {
		credField, creds = a.field("apns.cert"), "the certificate"
	}
	topic := a.field("apns.topic")
	s, err := apps.NewAPNs(a.cfg, a.field, d.cfg.HTTPClient)
	if err != nil {
		fix := "point " + credField + " at the .p8 key from Apple (Certificates, Identifiers & Profiles › Keys), with its key id and team id"
		if n.Key == "" {
			fix = credField + " and " + a.field("apns.cert_key") + " must be the PEM certificate and key of the app's push certificate"
		}
		d.fail("apns-auth", a.name, explain(err), fix)
		return
	}
	endpoint := host(apnsEndpoint(n))
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	err = s.Send(cctx, p2http.Wakeup{Token: probeAPNsToken, Device: probeDevice})
	switch reason := apnsReason(err); {
	case err == nil:
		d.warn("apns-auth", a.name, "APNs at "+endpoint+" accepted a push to a device token that cannot exist: it does not answer as Apple does",
			"unset "+a.field("apns.endpoint")+" to use Apple's endpoint")
	case reason == "BadDeviceToken" || reason == "Unregistered":
		d.ok("apns-auth", a.name, fmt.Sprintf("APNs at %s accepts %s and the topic %s: a push to a device token that cannot exist came back %s, not an auth error",
			endpoint, creds, n.Topic, reason))
	case reason == "InvalidProviderToken" || reason == "MissingProviderToken":
		d.fail("apns-auth", a.name, "APNs refused "+creds+" ("+reason+"): the key, its key id and the team do not belong together, or the key was revoked",
			credField+" must be the .p8 file of the key "+a.field("apns.key_id")+" names, and "+a.field("apns.team_id")+
				" the team that created it (Apple developer account › Membership); replace a revoked key")
	case reason == "ExpiredProviderToken":
		d.fail("apns-auth", a.name, "APNs finds a provider token signed just now expired (ExpiredProviderToken): this machine's clock is off",
			"set the clock right and keep it so (NTP: timedatectl set-ntp true)")
	case reason == "BadCertificateEnvironment":
		d.fail("apns-auth", a.name, "APNs at "+endpoint+" refused the certificate's environment (BadCertificateEnvironment)",
			"a development certificate needs "+a.field("apns.sandbox")+" set, a production one unset")
	case reason == "TopicDisallowed" || reason == "BadTopic" || reason == "MissingTopic" || reason == "DeviceTokenNotForTopic":
		d.fail("apns-auth", a.name, "APNs refused the topic "+n.Topic+" ("+reason+")",
			topic+" must be the app's bundle id (a VoIP topic ends in .voip), owned by the key's team or named by the certificate")
	case reason != "" || p2http.ErrorCode(err) == p2http.EUPSTREAM:
		d.fail("apns-auth", a.name, "APNs refused "+creds+": "+explain(err),
			"check "+credField+" and "+topic+" against the app in the Apple developer account")
	default:
		d.fail("apns-auth", a.name, "could not reach APNs at "+endpoint+": "+explain(err),
			"check that this machine reaches "+endpoint+":443 over HTTP/2 (Apple also listens on 2197): proxy, firewall, DNS")
	}
	d.checkAPNsEnvironment(a)
}

// checkAPNsEnvironment checks that the endpoint matches the sandbox
// setting and, with certificate authentication, the certificate's
// environment, bundle id and expiry.
func (d *doctor) checkAPNsEnvironment(a app) {
	n := a.cfg.APNs
	sandbox := a.field("apns.sandbox")
	env, builds := "production", "App Store, TestFlight and ad-hoc builds"
	if n.Sandbox {
		env, builds = "sandbox (development)", "builds installed from Xcode"
	}
	endpoint := host(apnsEndpoint(n))
	switch {
	case n.Sandbox && endpoint == host(apns.ProductionEndpoint):
		d.warn("apns-environment", a.name, sandbox+" asks for the sandbox, but "+a.field("apns.endpoint")+" is Apple's production endpoint, which wins",
			"unset "+a.field("apns.endpoint"))
		return
	case !n.Sandbox && endpoint == host(apns.SandboxEndpoint):
		d.warn("apns-environment", a.name, a.field("apns.endpoint")+" is Apple's sandbox endpoint, but "+sandbox+" is not set",
			"unset "+a.field("apns.endpoint")+", and set "+sandbox+" for development builds")
		return
	}
	valid := ""
	if n.Cert != "" {
		var problem *checkup.Check
		if valid, problem = d.checkCertificate(a); problem != nil {
			d.add(*problem)
			return
		}
	}
	d.ok("apns-environment", a.name, fmt.Sprintf("pushes go to the %s endpoint %s, for %s%s: APNs answers tokens of the other kind of build "+
		"BadDeviceToken, which p2http logs as a sandbox/production mix-up when most pushes get it", env, endpoint, builds, valid))
}
