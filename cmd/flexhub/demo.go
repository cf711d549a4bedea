package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flexhub/flexhub/app"
	"github.com/flexhub/flexhub/demo"
)

// sharedDataDir finds the folder with the demo's grid and meter data.
func sharedDataDir(c *config) (string, error) {
	if c.dataSet != "" {
		return c.dataSet, nil
	}
	candidates := []string{filepath.Join("..", "shared", "data")}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", "shared", "data"))
	}
	for _, d := range candidates {
		if st, err := os.Stat(filepath.Join(d, "grids")); err == nil && st.IsDir() {
			return d, nil
		}
	}
	return "", fmt.Errorf("cannot find the shared data folder (looked in %s); pass --shared-data", strings.Join(candidates, ", "))
}

func loadDemo(ctx context.Context, svc *app.Service, c *config, stdout io.Writer) error {
	keyFile := filepath.Join(c.dataDir, "demo-keys.txt")
	loaded, err := demo.Loaded(ctx, svc.Store())
	if err != nil {
		return err
	}
	if loaded {
		fmt.Fprintf(stdout, "The demo register is already loaded; its API keys are in %s.\n", keyFile)
		return nil
	}
	dir, err := sharedDataDir(c)
	if err != nil {
		return err
	}
	start := time.Now()
	fmt.Fprintf(stdout, "Loading the demo register from %s\n", dir)
	res, err := demo.Load(ctx, svc, dir, func(step string) { fmt.Fprintf(stdout, "  - %s\n", step) })
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Demo register loaded in %s: %d connection points, %d households, %d resources.\n\nDemo API keys (also in %s):\n\n",
		time.Since(start).Round(time.Millisecond), res.Points, res.Households, res.Resources, keyFile)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tPARTY\tAPI KEY")
	for _, k := range res.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", k.Role, k.Name, k.Token)
	}
	tw.Flush()
	fmt.Fprintln(stdout, b.String())
	fmt.Fprintf(stdout, "Try: curl -s http://%s/v1/resources -H \"Authorization: Bearer %s\"\n\n", c.addr, res.Keys[2].Token)
	if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
		return err
	}
	return os.WriteFile(keyFile, []byte(b.String()), 0o600)
}
