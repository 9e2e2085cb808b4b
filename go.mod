module github.com/xstack/xstack

go 1.26.8

require (
	github.com/cyphar/filepath-securejoin v0.7.0
	github.com/opencontainers/runtime-spec v1.3.0
	golang.org/x/sys v0.50.0
)

require cyphar.com/go-pathrs v0.2.5 // indirect
