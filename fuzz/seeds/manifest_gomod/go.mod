module example.com/acme/svc

go 1.22

require (
	github.com/pkg/errors v0.9.1 // indirect
	"golang.org/x/sync" v0.7.0
)
require example.com/other v1.2.3
tool golang.org/x/tools/cmd/stringer
replace example.com/other => ../other
