package xmpp_test

import (
	"strings"
	"testing"
)

// toApp readdresses a stanza built for the component's own address to
// APP@component.
func toApp(raw, app string) string {
	return strings.Replace(raw, "to='push.example.org'", "to='"+app+"@push.example.org'", 1)
}

// TestApps: a phone registering at APP@component gets that address back as
// jid, a publish sent there goes out through that app's FCM project, and a
// publish never crosses apps; a local part naming no app is item-not-found.
func TestApps(t *testing.T) {
	e := newEnv(t, options{apps: []string{"quicksy"}})
	const appJID = "quicksy@push.example.org"

	r := e.send(toApp(conversationsRegister("reg-q", "register-push-fcm", fcmToken1, androidID), "quicksy"))
	expectResult(t, r, "reg-q", appJID, aliceFull)
	x := r.Child("command").Child("x")
	qNode, qSecret := x.Field("node"), x.Field("secret")
	if x.Field("jid") != appJID || !nodeRE.MatchString(qNode) || !secretRE.MatchString(qSecret) {
		t.Fatalf("register at %s:\n%s", appJID, r.Raw)
	}
	if reg, err := e.Store.Lookup(t.Context(), qNode); err != nil || reg.App != "quicksy" {
		t.Fatalf("stored %+v, %v", reg, err)
	}
	dNode, dSecret := e.register("reg-d", fcmToken2, androidID)
	if dNode == qNode {
		t.Fatal("two apps share a node")
	}

	// To the app's address: the app's own project.
	r = e.send(toApp(prosodyPublish(prosodyID, qNode, qSecret, messageBody), "quicksy"))
	expectResult(t, r, prosodyID, appJID, "example.com")
	if n, d := len(e.AppFCM["quicksy"].Requests()), len(e.FCM.Requests()); n != 1 || d != 0 {
		t.Fatalf("quicksy's project got %d requests, the default one %d", n, d)
	}
	if got := e.AppFCM["quicksy"].Tokens(); len(got) != 1 || got[0] != fcmToken1 {
		t.Fatalf("quicksy's project got %q", got)
	}

	// Crossing apps either way is item-not-found, and nothing is sent.
	expectError(t, e.send(prosodyPublish(prosodyID, qNode, qSecret, "")), prosodyID, compJID, "example.com", "cancel", "item-not-found")
	expectError(t, e.send(toApp(prosodyPublish(prosodyID, dNode, dSecret, ""), "quicksy")), prosodyID, appJID, "example.com", "cancel", "item-not-found")
	if n, d := len(e.AppFCM["quicksy"].Requests()), len(e.FCM.Requests()); n != 1 || d != 0 {
		t.Fatalf("crossed pushes were sent: quicksy %d, default %d", n, d)
	}

	// A local part that names no app.
	expectError(t, e.send(toApp(conversationsRegister("reg-x", "register-push-fcm", fcmToken1, androidID), "nosuchapp")),
		"reg-x", "nosuchapp@push.example.org", aliceFull, "cancel", "item-not-found")
	expectError(t, e.send(toApp(prosodyPublish(prosodyID, qNode, qSecret, ""), "nosuchapp")),
		prosodyID, "nosuchapp@push.example.org", "example.com", "cancel", "item-not-found")

	// Unregistering at the app's address removes that app's registration only.
	u := e.send(toApp(command("unreg-q", "node='unregister-push-fcm' action='execute'",
		"<x xmlns='jabber:x:data' type='submit'><field var='android-id'><value>"+androidID+"</value></field></x>"), "quicksy"))
	expectResult(t, u, "unreg-q", appJID, aliceFull)
	if _, err := e.Store.Lookup(t.Context(), qNode); err == nil {
		t.Fatal("quicksy's registration survived its unregister")
	}
	if _, err := e.Store.Lookup(t.Context(), dNode); err != nil {
		t.Fatalf("the default app's registration is gone: %v", err)
	}
	e.assertLogsClean(fcmToken1, qSecret, alice, messageBody)
}
