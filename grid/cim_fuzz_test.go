package grid

import (
	"strings"
	"testing"
)

// FuzzReadCIM: any input either imports or returns an error; it never
// panics, and an imported network can be validated.
func FuzzReadCIM(f *testing.F) {
	f.Add(smallCIM)
	f.Add(strings.Replace(smallCIM, "<cim:TransformerEnd.endNumber>2", "<cim:TransformerEnd.endNumber>1", 1))
	f.Add(`<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"></rdf:RDF>`)
	f.Fuzz(func(t *testing.T, doc string) {
		n, err := ReadCIM(strings.NewReader(doc))
		if err != nil {
			if n != nil {
				t.Fatal("network and error")
			}
			return
		}
		_ = n.Validate()
	})
}
