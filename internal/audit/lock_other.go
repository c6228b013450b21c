//go:build !unix

package audit

import (
	"errors"
	"os"
)

func lockDir(dir string) (*os.File, error) { return nil, errors.ErrUnsupported }
