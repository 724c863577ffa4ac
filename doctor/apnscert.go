package doctor

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"

	"github.com/p2http/p2http/internal/checkup"
)

// What Apple puts in a push certificate: an extension per environment it
// is good for (both in a "Sandbox & Production" one), and the app's bundle
// id as the subject's UID.
var (
	oidAPNsDevelopment = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 1}
	oidAPNsProduction  = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
	oidUID             = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
)

// certExpiryWarning is how long before its expiry a certificate is warned
// about.
const certExpiryWarning = 30 * 24 * time.Hour

// checkCertificate checks an app's APNs certificate: its expiry, that it
// is good for the environment chosen, and that its bundle id is the topic.
// It returns a problem, or a phrase saying until when the certificate is
// valid.
func (d *doctor) checkCertificate(a app) (valid string, problem *checkup.Check) {
	n := a.cfg.APNs
	fail := func(status checkup.Status, msg, fix string) (string, *checkup.Check) {
		return "", &checkup.Check{ID: "apns-environment", App: a.name, Status: status, Message: msg, Fix: fix}
	}
	renew := "create a push certificate for the app (Apple developer account › Certificates), export it as PEM, and point " +
		a.field("apns.cert") + " and " + a.field("apns.cert_key") + " at it"
	pair, err := tls.LoadX509KeyPair(n.Cert, n.CertKey)
	if err != nil {
		return fail(checkup.Fail, "cannot read the certificate: "+err.Error(), renew)
	}
	leaf := pair.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fail(checkup.Fail, "cannot read the certificate: "+err.Error(), renew)
		}
	}
	now := d.now()
	until := leaf.NotAfter.UTC().Format(time.DateOnly)
	if now.After(leaf.NotAfter) {
		return fail(checkup.Fail, "the certificate expired on "+until, renew)
	}
	dev, prod := hasExtension(leaf, oidAPNsDevelopment), hasExtension(leaf, oidAPNsProduction)
	sandbox := a.field("apns.sandbox")
	switch {
	case dev && !prod && !n.Sandbox:
		return fail(checkup.Fail, "the certificate is for the sandbox (development) only, but "+sandbox+" is not set: APNs answers BadCertificateEnvironment",
			"set "+sandbox+" for development builds, or use a production certificate")
	case prod && !dev && n.Sandbox:
		return fail(checkup.Fail, "the certificate is for production only, but "+sandbox+" is set: APNs answers BadCertificateEnvironment",
			"unset "+sandbox+", or use a development certificate")
	}
	if uid := subjectUID(leaf); uid != "" && n.Topic != uid && !strings.HasPrefix(n.Topic, uid+".") {
		return fail(checkup.Fail, fmt.Sprintf("the certificate is for the bundle id %s, but %s is %s", uid, a.field("apns.topic"), n.Topic),
			"set "+a.field("apns.topic")+" to "+uid+", or use the certificate of the app "+n.Topic)
	}
	if leaf.NotAfter.Sub(now) < certExpiryWarning {
		return fail(checkup.Warn, "the certificate expires on "+until+": pushes stop then", "renew it before: "+renew)
	}
	return "; the certificate is valid until " + until, nil
}

// hasExtension reports whether c carries the extension id.
func hasExtension(c *x509.Certificate, id asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(id) {
			return true
		}
	}
	return false
}

// subjectUID is the UID of c's subject: the bundle id, in Apple's push
// certificates.
func subjectUID(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if s, ok := n.Value.(string); ok && n.Type.Equal(oidUID) {
			return s
		}
	}
	return ""
}
