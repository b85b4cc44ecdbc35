// The linters `make lint` runs, pinned here, apart from the project's own
// module so that its dependencies stay as they are. Versions that build
// with Go 1.24: staticcheck 2025.1.1 (v0.6.1) and go-errorlint v1.8.0.
module gitlab.tails.boum.org/tails/entropy-gate/internal/tools

go 1.24.0

tool (
	github.com/polyfloyd/go-errorlint
	honnef.co/go/tools/cmd/staticcheck
)

require (
	github.com/BurntSushi/toml v1.4.1-0.20240526193622-a339e1f7089c // indirect
	github.com/polyfloyd/go-errorlint v1.8.0 // indirect
	golang.org/x/exp/typeparams v0.0.0-20231108232855-2478ac86f678 // indirect
	golang.org/x/mod v0.24.0 // indirect
	golang.org/x/sync v0.12.0 // indirect
	golang.org/x/tools v0.31.0 // indirect
	honnef.co/go/tools v0.6.1 // indirect
)
