module example.com/quiesce

go 1.22
