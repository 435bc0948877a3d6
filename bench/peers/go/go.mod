module goro.dev/peers

go 1.19
