package api

import _ "embed"

// OpenAPI is the OpenAPI 3.0 document of the HTTP API (openapi.yaml): every
// route the server serves, the statuses each answers and the schemas of
// these types. The server's tests check it against the routes and against
// real answers.
//
//go:embed openapi.yaml
var OpenAPI []byte
