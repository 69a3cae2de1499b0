module github.com/tokend/tokend

go 1.26.8
