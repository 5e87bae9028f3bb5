using System;
using System.Linq;
using System.Text;
using PsIpc.Transport.Sockets;
using Xunit;

namespace PsIpc.Transport.Tests
{
    public class SocketHandshakeTests
    {
        private static string Hex(byte[] bytes) => string.Concat(bytes.Select(b => b.ToString("x2")));

        [Fact]
        public void ProofsMatchTheTestVectorOfProtocolMd()
        {
            // docs/protocol.md, section 11: key "secret", client nonce 0..31, server nonce 32..63.
            byte[] key = Encoding.UTF8.GetBytes("secret");
            byte[] cn = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
            byte[] sn = Enumerable.Range(32, 32).Select(i => (byte)i).ToArray();

            byte[] serverProof = SocketHandshake.Mac(key, Encoding.ASCII.GetBytes("PSIPC-AUTH-SERVER"), cn, sn);
            byte[] clientResponse = SocketHandshake.Mac(key, Encoding.ASCII.GetBytes("PSIPC-AUTH-CLIENT"), sn, cn);

            Assert.Equal("a912e26e2c6ad3aad512e2e1c9ed0a734d303fdc124e7eb47adaf4927146549e", Hex(serverProof));
            Assert.Equal("0a4b7ecd8b31877d33addd6ea19e6faf5121dab9c4bfe2160d0f8fbe8c92f05b", Hex(clientResponse));
        }

        [Fact]
        public void SecurityKeepsItsOwnCopyOfTheSecret()
        {
            byte[] secret = Encoding.UTF8.GetBytes("abc");
            var security = new SocketSecurity { Secret = secret };
            secret[0] = (byte)'x';
            Assert.Equal("abc", Encoding.UTF8.GetString(security.Secret));
            Assert.True(security.HasSecret);
            Assert.False(new SocketSecurity { Secret = new byte[0] }.HasSecret);
        }

        [Fact]
        public void ThumbprintsAreComparedWithoutSeparatorsOrCase()
        {
            Assert.Equal("AB12CD", SocketSecurity.NormalizeThumbprint("ab:12 cd"));
            Assert.Null(SocketSecurity.NormalizeThumbprint(null));
        }
    }
}
