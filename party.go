package flexhub

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// Role is a role of the Harmonised Electricity Market Role Model
// (ebIX/EFET/ENTSO-E), plus the platform administrator. One party may hold
// several roles.
type Role string

// The roles a party can hold.
const (
	RoleAdmin                       Role = "admin" // operates this flexhub installation
	RoleTSO                         Role = "tso"
	RoleDSO                         Role = "dso"
	RoleFSP                         Role = "fsp" // flexibility service provider / aggregator
	RoleConsumer                    Role = "consumer"
	RoleMarketOperator              Role = "market_operator"
	RoleFlexibilityRegisterOperator Role = "flexibility_register_operator"
	RoleBRP                         Role = "brp" // balance responsible party
	RoleSupplier                    Role = "supplier"
	RoleImbalanceSettlement         Role = "imbalance_settlement_responsible"
)

// Roles lists every role, in a stable order.
var Roles = []Role{RoleAdmin, RoleTSO, RoleDSO, RoleFSP, RoleConsumer, RoleMarketOperator,
	RoleFlexibilityRegisterOperator, RoleBRP, RoleSupplier, RoleImbalanceSettlement}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Party is a company or person known to the platform.
type Party struct {
	ID string `json:"id" doc:"flexhub identifier" readOnly:"true"`
	PartySpec
	Version   int64     `json:"version" doc:"optimistic concurrency version; send it back in If-Match" readOnly:"true"`
	CreatedAt time.Time `json:"created_at" readOnly:"true"`
	UpdatedAt time.Time `json:"updated_at" readOnly:"true"`
}

// PartySpec is the part of a party its registrant writes.
type PartySpec struct {
	EIC   string `json:"eic" doc:"ENTSO-E Energy Identification Code (16 characters, last one a check character)" example:"10XFLEXHUB-DSO-1"`
	Name  string `json:"name" minLength:"1" maxLength:"200"`
	Roles []Role `json:"roles" minItems:"1" doc:"Harmonised Role Model roles" enum:"admin,tso,dso,fsp,consumer,market_operator,flexibility_register_operator,brp,supplier,imbalance_settlement_responsible"`
	Email string `json:"email,omitempty" maxLength:"200"`
}

// HasRole reports whether the party holds role r.
func (p *Party) HasRole(r Role) bool { return slices.Contains(p.Roles, r) }

// HasAnyRole reports whether the party holds one of rs.
func (p *Party) HasAnyRole(rs ...Role) bool {
	for _, r := range rs {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

// IsSystemOperator reports whether the party is a TSO or DSO.
func (p *Party) IsSystemOperator() bool { return p.HasAnyRole(RoleTSO, RoleDSO) }

var eicPattern = regexp.MustCompile(`^[0-9]{2}[A-Z0-9-][A-Z0-9-]{12}[A-Z0-9-]$`)

// eicWeights are the position weights of the EIC check character algorithm.
// Characters map 0-9 to 0-9, A-Z to 10-35 and '-' to 36.
func eicValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	default:
		return 36
	}
}

// EICCheckChar computes the check character of the first 15 characters of
// an Energy Identification Code, following ENTSO-E's EIC reference manual.
func EICCheckChar(first15 string) byte {
	sum := 0
	for i := 0; i < 15; i++ {
		sum += eicValue(first15[i]) * (16 - i)
	}
	r := 36 - ((sum - 1) % 37)
	switch {
	case r < 10:
		return byte('0' + r)
	case r < 36:
		return byte('A' + r - 10)
	default:
		return '-'
	}
}

// EICFromStem makes a valid EIC from a stem: upper-cased, cut or padded
// with '-' to 15 characters, followed by its check character. For
// demos, tests and codes flexhub issues itself.
func EICFromStem(stem string) string {
	stem = strings.ToUpper(stem)
	if len(stem) > 15 {
		stem = stem[:15]
	}
	stem += strings.Repeat("-", 15-len(stem))
	return stem + string(EICCheckChar(stem))
}

// ValidateEIC checks the shape and the check character of an EIC.
func ValidateEIC(field, eic string) error {
	if !eicPattern.MatchString(eic) {
		return FieldErrorf(field, "%q is not an EIC: want 16 characters, 2 digits, a type letter, then A-Z, 0-9 or '-'", eic)
	}
	if want := EICCheckChar(eic); eic[15] != want {
		return FieldErrorf(field, "EIC %q has check character %q, want %q", eic, eic[15], want)
	}
	return nil
}

// Validate checks a party's registration data.
func (s *PartySpec) Validate() error {
	s.EIC = strings.ToUpper(strings.TrimSpace(s.EIC))
	s.Name = strings.TrimSpace(s.Name)
	if err := ValidateEIC("eic", s.EIC); err != nil {
		return err
	}
	if s.Name == "" {
		return FieldErrorf("name", "a party needs a name")
	}
	if len(s.Roles) == 0 {
		return FieldErrorf("roles", "a party needs at least one role")
	}
	seen := map[Role]bool{}
	for i, r := range s.Roles {
		if !r.Valid() {
			return FieldErrorf(fieldIndex("roles", i), "unknown role %q", r)
		}
		if seen[r] {
			return FieldErrorf(fieldIndex("roles", i), "role %q is listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

// Credential is an API key of a party. The secret is shown once at creation
// and stored only as a hash.
type Credential struct {
	ID        string     `json:"id" doc:"key identifier; the public prefix of the token"`
	PartyID   string     `json:"party_id"`
	Label     string     `json:"label,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	LastUsed  *time.Time `json:"last_used_at,omitempty"`
	// SecretHash is SHA-256 of the secret part; never leaves the server.
	SecretHash []byte `json:"-"`
}

// Active reports whether the credential may still authenticate.
func (c *Credential) Active() bool { return c.RevokedAt == nil }
