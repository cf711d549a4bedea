// Package ui is flexhub's register console: a small static web page,
// embedded in the binary, that talks to the same REST API as every other
// client with the API key the user types in. It holds no logic of its own
// beyond presentation.
package ui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the console at / and its assets under /ui/.
func Handler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page runs only our own script and talks only to our own API;
		// the key never leaves this origin.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		r = r.Clone(r.Context())
		r.URL.Path = r.URL.Path[len("/ui"):]
		files.ServeHTTP(w, r)
	})
}
