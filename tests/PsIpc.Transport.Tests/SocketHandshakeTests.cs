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
            // docs/protocol.md, section 11: secret "secret", client nonce 0..31, server nonce 32..63.
            byte[] key = SocketSecurity.DeriveKey(Encoding.UTF8.GetBytes("secret"));
            Assert.Equal("994616b58acca185f6437af5c3437f8fc9f16538c4b679491b0805506a22f127", Hex(key));
            byte[] cn = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
            byte[] sn = Enumerable.Range(32, 32).Select(i => (byte)i).ToArray();

            byte[] serverProof = SocketHandshake.Mac(key, Encoding.ASCII.GetBytes("PSIPC-AUTH-SERVER"), cn, sn);
            byte[] clientResponse = SocketHandshake.Mac(key, Encoding.ASCII.GetBytes("PSIPC-AUTH-CLIENT"), sn, cn);

            Assert.Equal("51e17a87e1af597dd976daeff9417523beb36f8304dacca12df41c3416e20af3", Hex(serverProof));
            Assert.Equal("ce6be89c155e6e9c9c06290fd26fe2b3b96697b9b889178f9122fed395633dd6", Hex(clientResponse));
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
