package main

import (
	"context"
	"fmt"
	"io"

	"github.com/flexhub/flexhub/app"
)

func loadDemo(ctx context.Context, svc *app.Service, c *config, stdout io.Writer) error {
	return fmt.Errorf("not built yet")
}
