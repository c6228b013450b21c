// Package python holds pybox's Python client (pybox_client, standard
// library only) and the Go test that runs its unittest suite against a
// real `pybox serve`, so that `go test ./...` covers it.
package python
