// Pins the Hyperledger Fabric release whose binaries run the native network (see build.sh).
// Fabric v3.1.5 is commit 86c1172bec37; its go.mod lacks a /v3 suffix, so its tags cannot be
// required and the version below is the pseudo-version of that commit.
module custodia/fabric-network

go 1.26.5

tool (
	github.com/hyperledger/fabric/cmd/configtxgen
	github.com/hyperledger/fabric/cmd/cryptogen
	github.com/hyperledger/fabric/cmd/orderer
	github.com/hyperledger/fabric/cmd/osnadmin
	github.com/hyperledger/fabric/cmd/peer
)

require github.com/hyperledger/fabric v1.4.0-rc1.0.20260618074816-86c1172bec37
