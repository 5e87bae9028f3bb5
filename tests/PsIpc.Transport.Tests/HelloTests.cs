using System;
using System.Text;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Transport.Tests
{
    public class HelloTests
    {
        [Fact]
        public void RoundTripKeepsEveryField()
        {
            var hello = new Hello(Hello.CurrentVersion, 123456, 7 * 1024 * 1024);

            byte[] payload = hello.ToPayload();
            Hello? parsed = Hello.TryParse(payload);

            Assert.Equal(Hello.PayloadSize, payload.Length);
            Assert.NotNull(parsed);
            Assert.Equal(Hello.CurrentVersion, parsed.Version);
            Assert.Equal(123456, parsed.ProcessId);
            Assert.Equal(7 * 1024 * 1024, parsed.MaxMessageSize);
        }

        [Fact]
        public void PayloadLayoutIsTheDocumentedOne()
        {
            byte[] payload = new Hello(1, 0x01020304, 0x0A0B0C0D).ToPayload();

            Assert.Equal("PSIPC", Encoding.ASCII.GetString(payload, 0, 5));
            Assert.Equal(1, payload[5]);
            Assert.Equal(0, payload[6]); // flags
            Assert.Equal(0, payload[7]); // reserved
            Assert.Equal(new byte[] { 4, 3, 2, 1 }, payload[8..12]);
            Assert.Equal(new byte[] { 0x0D, 0x0C, 0x0B, 0x0A }, payload[12..16]);
        }

        [Fact]
        public void OtherVersionsParseSoTheCallerCanReportAMismatch()
        {
            Hello? parsed = Hello.TryParse(new Hello(2, 1, 1).ToPayload());

            Assert.NotNull(parsed);
            Assert.Equal(2, parsed.Version);
        }

        [Theory]
        [InlineData(0)]
        [InlineData(4)]
        public void WrongMagicIsNotAHello(int corruptedIndex)
        {
            byte[] payload = new Hello(Hello.CurrentVersion, 1, 1).ToPayload();
            payload[corruptedIndex] ^= 0x20;

            Assert.Null(Hello.TryParse(payload));
        }

        [Theory]
        [InlineData(0)]
        [InlineData(5)]
        [InlineData(Hello.PayloadSize - 1)]
        public void ShortPayloadIsNotAHello(int length)
        {
            byte[] payload = new Hello(Hello.CurrentVersion, 1, 1).ToPayload()[..length];

            Assert.Null(Hello.TryParse(payload));
        }

        [Fact]
        public void NullIsNotAHello()
        {
            Assert.Null(Hello.TryParse(null));
        }

        [Fact]
        public void ExtraBytesFromALaterVersionAreIgnored()
        {
            byte[] payload = new Hello(Hello.CurrentVersion, 42, 1000).ToPayload();
            var longer = new byte[payload.Length + 9];
            Buffer.BlockCopy(payload, 0, longer, 0, payload.Length);
            for (int i = payload.Length; i < longer.Length; i++) longer[i] = 0xFF;

            Hello? parsed = Hello.TryParse(longer);

            Assert.NotNull(parsed);
            Assert.Equal(42, parsed.ProcessId);
            Assert.Equal(1000, parsed.MaxMessageSize);
        }

        [Fact]
        public void MaxMessageSizeAboveIntMaxIsClampedNotNegative()
        {
            byte[] payload = new Hello(Hello.CurrentVersion, 1, 1).ToPayload();
            payload[12] = payload[13] = payload[14] = payload[15] = 0xFF;

            Assert.Equal(int.MaxValue, Hello.TryParse(payload)?.MaxMessageSize);
        }
    }
}
