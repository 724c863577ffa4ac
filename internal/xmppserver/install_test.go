package xmppserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCloudNotifyLayouts: mod_cloud_notify is found in Prosody 13's core
// layout and in prosody-modules' layout for 0.12, and neither is a clear
// error that names both places.
func TestCloudNotifyLayouts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string // created under the module directory
		want  string   // found path, relative; "" for an error
	}{
		{"prosody 13 core", []string{"mod_cloud_notify.lua", "mod_smacks.lua"}, "mod_cloud_notify.lua"},
		{"prosody-modules for 0.12", []string{"mod_cloud_notify/mod_cloud_notify.lua", "mod_c2s.lua"}, "mod_cloud_notify/mod_cloud_notify.lua"},
		{"both", []string{"mod_cloud_notify.lua", "mod_cloud_notify/mod_cloud_notify.lua"}, "mod_cloud_notify.lua"},
		{"neither", []string{"mod_c2s.lua", "mod_cloud_notify_extensions/mod_cloud_notify_extensions.lua"}, ""},
		{"a directory without the module", []string{"mod_cloud_notify/README.md"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("-- a module\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := cloudNotify(dir)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("cloudNotify found %s, want an error", got)
				}
				for _, w := range []string{filepath.Join(dir, "mod_cloud_notify.lua"), filepath.Join(dir, "mod_cloud_notify", "mod_cloud_notify.lua")} {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not name %s", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("cloudNotify: %v", err)
			}
			if want := filepath.Join(dir, tc.want); got != want {
				t.Errorf("cloudNotify = %s, want %s", got, want)
			}
		})
	}
}

// TestBeamHasAtom reads the atom table of the installed ejabberd's
// mod_push_opt, which has one atom per option of mod_push on every
// generation, and of a module made up here.
func TestBeamHasAtom(t *testing.T) {
	EnsureInstalled(t, Ejabberd)
	for _, opt := range []string{"include_body", "include_sender", "cache_size"} {
		if ok, err := EjabberdModPushHas(opt); err != nil || !ok {
			t.Errorf("EjabberdModPushHas(%q) = %v, %v; want true", opt, ok, err)
		}
	}
	for _, opt := range []string{"no_such_option", "include", "notify"} {
		if ok, err := EjabberdModPushHas(opt); err != nil || ok {
			t.Errorf("EjabberdModPushHas(%q) = %v, %v; want false", opt, ok, err)
		}
	}

	// FOR1 size BEAM, an AtU8 chunk of two atoms padded to 4 bytes, a Code chunk.
	atoms := []byte{0, 0, 0, 2, 3, 'f', 'o', 'o', 9, 'n', 'o', 't', 'i', 'f', 'y', '_', 'o', 'n'}
	chunk := func(id string, b []byte) []byte {
		out := append([]byte(id), byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b)))
		out = append(out, b...)
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		return out
	}
	body := append([]byte("BEAM"), chunk("Code", []byte{1, 2, 3, 4, 5})...)
	body = append(body, chunk("AtU8", atoms)...)
	beam := append([]byte("FOR1"), 0, 0, 0, byte(len(body)))
	beam = append(beam, body...)
	for name, want := range map[string]bool{"foo": true, "notify_on": true, "notify": false, "fo": false} {
		if got, err := beamHasAtom(beam, name); err != nil || got != want {
			t.Errorf("beamHasAtom(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := beamHasAtom(beam[:len(beam)-3], "foo"); err == nil {
		t.Error("a truncated BEAM file gave no error")
	}
	if _, err := beamHasAtom([]byte("#!/bin/sh\n"), "foo"); err == nil {
		t.Error("a shell script was taken for a BEAM file")
	}
}
