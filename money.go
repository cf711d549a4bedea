package flexhub

import (
	"math"
	"strconv"
	"strings"
)

// Money never passes through float64: a price of 45.10 EUR read as a
// float is 45.099999..., and summing thousands of bids would drift. On the
// wire an amount is a decimal string with its currency; inside flexhub it
// is an int64 count of ten-thousandths of the currency unit (MoneyScale),
// so every accepted amount is exact and arithmetic is integer arithmetic.

// MoneyScale is how many internal units make one unit of currency: amounts
// are exact to 4 decimals (1/100 of a cent), enough for per-MW prices.
const MoneyScale = 10_000

// moneyDecimals is the number of decimals MoneyScale keeps.
const moneyDecimals = 4

// maxMoneyUnits bounds amounts so that a price times any quantity of
// flexibility in MW still fits an int64 when the clearing multiplies them.
const maxMoneyUnits = 1_000_000_000 // one billion currency units

// Money is an amount of money on the wire: a decimal string and an ISO
// 4217 currency code, e.g. {"amount": "45.50", "currency": "EUR"}.
type Money struct {
	Amount   string `json:"amount" maxLength:"32" doc:"decimal string with at most 4 decimals, e.g. \"45.50\"; never a JSON number, so no client rounds it through a float"`
	Currency string `json:"currency" doc:"ISO 4217 code, e.g. EUR"`
}

// Parse validates the amount and currency and returns the amount in
// ten-thousandths of the currency unit. Errors name field.amount or
// field.currency.
func (m *Money) Parse(field string) (int64, error) {
	if err := ValidateCurrency(field+".currency", m.Currency); err != nil {
		return 0, err
	}
	return ParseAmount(field+".amount", m.Amount)
}

// ValidateCurrency checks an ISO 4217 code: three upper-case letters.
func ValidateCurrency(field, c string) error {
	if len(c) != 3 || strings.IndexFunc(c, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return FieldErrorf(field, "%q is not an ISO 4217 currency code such as EUR", c)
	}
	return nil
}

// ParseAmount reads a decimal string ("45", "45.5", "-0.0001") exactly
// into ten-thousandths. More than 4 decimals is an error rather than a
// silent rounding: the party would be bound to a price it did not send.
func ParseAmount(field, s string) (int64, error) {
	bad := func() (int64, error) {
		return 0, FieldErrorf(field, "%q is not a decimal amount: write digits with an optional point, e.g. \"45.50\"", s)
	}
	if s == "" {
		return 0, FieldErrorf(field, "an amount is required, e.g. \"45.50\"")
	}
	neg := false
	rest := s
	if rest[0] == '-' || rest[0] == '+' {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	whole, frac, dot := strings.Cut(rest, ".")
	if whole == "" || (dot && frac == "") || !digits(whole) || !digits(frac) {
		return bad()
	}
	if len(frac) > moneyDecimals {
		return 0, FieldErrorf(field, "%q has %d decimals; amounts are exact to %d decimals (1/%d of the currency unit)", s, len(frac), moneyDecimals, MoneyScale)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > maxMoneyUnits {
		return 0, FieldErrorf(field, "%q is beyond the largest amount flexhub accepts (%d)", s, maxMoneyUnits)
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", moneyDecimals-len(frac)), 10, 64)
	}
	v := w*MoneyScale + f
	if neg {
		v = -v
	}
	return v, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatAmount renders ten-thousandths as a decimal string with at least
// two decimals and no trailing zeros beyond them: 455000 → "45.50".
func FormatAmount(v int64) string {
	sign := ""
	if v < 0 {
		sign = "-"
		if v == math.MinInt64 {
			return "-922337203685477.5808"
		}
		v = -v
	}
	frac := strconv.FormatInt(v%MoneyScale+MoneyScale, 10)[1:] // 4 digits, zero-padded
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return sign + strconv.FormatInt(v/MoneyScale, 10) + "." + frac
}

// Normalize validates m and rewrites its amount in canonical form
// ("45.5" → "45.50"), so stored prices compare as text and read the same
// for every party. It returns the parsed amount.
func (m *Money) Normalize(field string) (int64, error) {
	v, err := m.Parse(field)
	if err != nil {
		return 0, err
	}
	m.Amount = FormatAmount(v)
	return v, nil
}
