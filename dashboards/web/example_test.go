package web_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/dmarcd/dmarcd/dashboards/web"
	"github.com/dmarcd/dmarcd/schema/sqlite"
)

// Serve the page of a store on the local machine. On another address,
// CheckListen wants Auth to hold a token or basic authentication.
func Example() {
	st, err := sqlite.Open(context.Background(), "dmarcd.db")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	addr := "127.0.0.1:8478"
	auth := web.Auth{} // web.Auth{Token: "..."} on a network address
	if err := web.CheckListen(addr, auth); err != nil {
		log.Fatal(err)
	}
	h, err := web.New(web.Options{Store: st, Auth: auth})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
