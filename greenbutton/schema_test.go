package greenbutton

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// xmllint validates doc against schema (relative to the conformance
// folder, run from there with its catalog so that atom.xsd's import of
// the W3C xml.xsd resolves offline) and returns its output and whether
// the document is valid.
func xmllint(t *testing.T, schema string, doc []byte) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("xmllint is not installed; CI must install libxml2-utils")
		}
		t.Skip("xmllint is not installed (apt-get install libxml2-utils)")
	}
	dir := conformanceDir(t)
	file := filepath.Join(t.TempDir(), "feed.xml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--noout", "--nonet", "--schema", schema, file)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XML_CATALOG_FILES=catalog.xml")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("xmllint: %v", err)
		}
	}
	if strings.Contains(string(out), "failed to load") || strings.Contains(string(out), "WXS schema") && strings.Contains(string(out), "failed to compile") {
		t.Fatalf("xmllint could not load the schema %s: %s", schema, out)
	}
	return string(out), err == nil && strings.Contains(string(out), "validates")
}

// The exported feed (several usage points, import and export series,
// readings across UTC day boundaries, an id that needs escaping) is
// valid ESPI 4.0 with the strict atom.xsd.
func TestExportValidatesAgainstESPISchema(t *testing.T) {
	var buf bytes.Buffer
	if err := Export(&buf, testFeed()); err != nil {
		t.Fatal(err)
	}
	if out, ok := xmllint(t, "ESPI_4.0/espi.xsd", buf.Bytes()); !ok {
		t.Fatalf("the export does not validate:\n%s", out)
	}
	// Relative links (no BaseURL) and a feed of one usage point without
	// series validate too.
	buf.Reset()
	if err := Export(&buf, Feed{SubscriptionID: "s", UsagePoints: []UsagePoint{{ID: "mp"}}}); err != nil {
		t.Fatal(err)
	}
	if out, ok := xmllint(t, "ESPI_4.0/espi.xsd", buf.Bytes()); !ok {
		t.Fatalf("the minimal export does not validate:\n%s", out)
	}
}

// The validation above runs with the strict atom.xsd: espi.xsd imports
// the atom.xsd beside it, that one requires link/@type, and a feed
// with a link missing its type fails there while the legacy atom.xsd
// would let it pass. A broken ESPI value fails too, so a pass means
// something.
func TestValidationUsesStrictAtomSchema(t *testing.T) {
	dir := conformanceDir(t)
	espi, err := os.ReadFile(filepath.Join(dir, "ESPI_4.0", "espi.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(espi, []byte(`<xs:import namespace="http://www.w3.org/2005/Atom" schemaLocation="atom.xsd"/>`)) {
		t.Fatal("ESPI_4.0/espi.xsd does not import the atom.xsd beside it")
	}
	if !linkTypeRequired(t, filepath.Join(dir, "ESPI_4.0", "atom.xsd")) {
		t.Fatal("ESPI_4.0/atom.xsd does not require link/@type: not the strict schema")
	}
	if linkTypeRequired(t, filepath.Join(dir, "ESPI_4.0-legacy-atom", "atom.xsd")) {
		t.Fatal("the legacy atom.xsd requires link/@type too; the strictness check below proves nothing")
	}

	var buf bytes.Buffer
	if err := Export(&buf, testFeed()); err != nil {
		t.Fatal(err)
	}
	untyped := bytes.Replace(buf.Bytes(), []byte(` type="espi-feed/MeterReading"/>`), []byte(`/>`), 1)
	if bytes.Equal(untyped, buf.Bytes()) {
		t.Fatal("no link to strip the type of")
	}
	if out, ok := xmllint(t, "ESPI_4.0/espi.xsd", untyped); ok || !strings.Contains(out, "'type' is required") {
		t.Fatalf("a link without type passed the strict schema:\n%s", out)
	}
	if out, ok := xmllint(t, "ESPI_4.0-legacy-atom/espi.xsd", untyped); !ok {
		t.Fatalf("a link without type should pass the legacy schema:\n%s", out)
	}
	bad := bytes.Replace(buf.Bytes(), []byte("<uom>72</uom>"), []byte("<uom>Wh</uom>"), 1)
	if out, ok := xmllint(t, "ESPI_4.0/espi.xsd", bad); ok {
		t.Fatalf("a ReadingType with uom Wh passed:\n%s", out)
	}
}

// linkTypeRequired reports whether the Atom schema at path declares the
// type attribute of linkType required.
func linkTypeRequired(t *testing.T, path string) bool {
	t.Helper()
	var s struct {
		Types []struct {
			Name  string `xml:"name,attr"`
			Attrs []struct {
				Name string `xml:"name,attr"`
				Use  string `xml:"use,attr"`
			} `xml:"attribute"`
		} `xml:"complexType"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for _, ct := range s.Types {
		if ct.Name != "linkType" {
			continue
		}
		for _, a := range ct.Attrs {
			if a.Name == "type" {
				return a.Use == "required"
			}
		}
	}
	t.Fatalf("%s has no linkType/@type", path)
	return false
}
