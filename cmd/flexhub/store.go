package main

import (
	"database/sql"

	"github.com/flexhub/flexhub"
	"github.com/flexhub/flexhub/sqlstore"
)

func dbOf(s flexhub.Store) *sql.DB { return s.(*sqlstore.Store).DB() }
