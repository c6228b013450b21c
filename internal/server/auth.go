package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/time/rate"

	"github.com/pybox-dev/pybox/api"
	"github.com/pybox-dev/pybox/internal/policy"
)

// Tenant is the owner of one API key: what it may run and how much. Every
// session belongs to one tenant, and no tenant can see another's.
type Tenant struct {
	Name string
	// KeySHA256 is the hex SHA-256 of the key: the server never holds the
	// key itself. Keys are random 256-bit tokens (NewKey), so an unsalted
	// hash is as strong as the key.
	KeySHA256 string
	// Policy checks the tenant's code; nil means the server's default.
	Policy *policy.Checker
	// Rate (requests per second) and Burst bound the tenant's requests
	// on /v1 routes; zero Rate means the server's default. MaxSessions
	// is how many live sessions the tenant may hold (0: the default).
	Rate        float64
	Burst       int
	MaxSessions int
}

// KeyPrefix starts every key NewKey makes, so that a leaked key is easy to
// recognise (and to find with secret scanners).
const KeyPrefix = "pbx_"

// NewKey returns a fresh random API key and the hash to put in the
// configuration.
func NewKey() (key, sha string) {
	var b [32]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand does not fail on Linux
	key = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashKey(key)
}

// HashKey is the hex SHA-256 of a key, as stored in the configuration.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// tenant is a Tenant with its live state.
type tenant struct {
	Tenant
	hash    []byte
	limiter *rate.Limiter // nil: no rate limit
}

// anonymousTenant is who every request is with --insecure-no-auth.
const anonymousTenant = "anonymous"

func (s *Server) setupTenants() error {
	mk := func(t Tenant) (*tenant, error) {
		if t.Policy == nil {
			t.Policy = s.cfg.Policy
		}
		if t.Rate == 0 {
			t.Rate, t.Burst = s.cfg.Rate, s.cfg.Burst
		}
		if t.Burst <= 0 {
			t.Burst = max(1, int(t.Rate))
		}
		if t.MaxSessions == 0 {
			t.MaxSessions = s.cfg.MaxSessionsPerKey
		}
		x := &tenant{Tenant: t}
		if t.Rate > 0 {
			x.limiter = rate.NewLimiter(rate.Limit(t.Rate), t.Burst)
		}
		return x, nil
	}
	if s.cfg.NoAuth {
		t, _ := mk(Tenant{Name: anonymousTenant})
		s.anonymous = t
		return nil
	}
	if len(s.cfg.Tenants) == 0 {
		return fmt.Errorf("no API keys are configured: add api-keys to the configuration (pybox key new makes one), or start with --insecure-no-auth on a trusted host")
	}
	seen := map[string]bool{}
	for _, t := range s.cfg.Tenants {
		h, err := hex.DecodeString(t.KeySHA256)
		if err != nil || len(h) != sha256.Size {
			return fmt.Errorf("API key of tenant %q: sha256 must be 64 hex digits (the output of pybox key new)", t.Name)
		}
		if t.Name == "" || seen[t.Name] {
			return fmt.Errorf("API keys: tenant name %q is empty or used twice", t.Name)
		}
		seen[t.Name] = true
		x, err := mk(t)
		if err != nil {
			return err
		}
		x.hash = h
		s.tenants = append(s.tenants, x)
	}
	return nil
}

// authenticate finds the tenant of a request's key. It compares the key's
// hash with every tenant's in constant time, so that neither which tenant
// matched nor how much of a hash did shows in the timing.
func (s *Server) authenticate(r *http.Request) (*tenant, *problem) {
	if s.anonymous != nil {
		return s.anonymous, nil
	}
	key, ok := requestKey(r)
	if !ok {
		return nil, unauthorized("send an API key as \"Authorization: Bearer <key>\" (or in the X-API-Key header)")
	}
	sum := sha256.Sum256([]byte(key))
	var found *tenant
	for _, t := range s.tenants {
		if subtle.ConstantTimeCompare(sum[:], t.hash) == 1 {
			found = t
		}
	}
	if found == nil {
		return nil, unauthorized("the API key is not valid on this server")
	}
	return found, nil
}

func requestKey(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			return "", false
		}
		return strings.TrimSpace(key), true
	}
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	return "", false
}

func unauthorized(detail string) *problem {
	return newProblem(http.StatusUnauthorized, api.ProblemUnauthorized, "Unauthorized", detail)
}
