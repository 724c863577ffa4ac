package main

// envNames maps the fields of the default app's settings (apps.Config), as
// named in the P2_CONFIG file, to their environment variables.
var envNames = map[string]string{
	"fcm.credentials": "P2_FCM_CREDENTIALS", "fcm.endpoint": "P2_FCM_ENDPOINT",
	"apns.key": "P2_APNS_KEY", "apns.key_id": "P2_APNS_KEY_ID", "apns.team_id": "P2_APNS_TEAM_ID",
	"apns.cert": "P2_APNS_CERT", "apns.cert_key": "P2_APNS_CERT_KEY", "apns.topic": "P2_APNS_TOPIC",
	"apns.sandbox": "P2_APNS_SANDBOX", "apns.endpoint": "P2_APNS_ENDPOINT",
}

// envName names a field of the default app: its environment variable.
func envName(field string) string { return envNames[field] }
