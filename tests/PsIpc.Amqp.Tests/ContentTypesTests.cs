using System.Text;
using PsIpc.Transport.Framing;
using Xunit;

namespace PsIpc.Amqp.Tests
{
    /// <summary>Payload formats as content types, and what other languages' messages become.</summary>
    public class ContentTypesTests
    {
        private static MessageFormat Parse(string? contentType, byte[] body, string? encoding = null) =>
            ContentTypes.Parse(contentType, encoding, ref body);

        [Theory]
        [InlineData(MessageFormat.Text, "text/plain; charset=utf-8")]
        [InlineData(MessageFormat.Json, "application/json")]
        [InlineData(MessageFormat.Bytes, "application/octet-stream")]
        [InlineData(MessageFormat.CliXml, "application/vnd.powershell.clixml+xml")]
        public void EachFormatHasAContentTypeThatReadsBackAsIt(MessageFormat format, string contentType)
        {
            Assert.Equal(contentType, ContentTypes.For(format));
            Assert.Equal(format, Parse(contentType, Encoding.UTF8.GetBytes("x")));
        }

        [Fact]
        public void WithoutAContentTypeValidUtf8IsTextAndAnythingElseBytes()
        {
            Assert.Equal(MessageFormat.Text, Parse(null, Encoding.UTF8.GetBytes("héllo")));
            Assert.Equal(MessageFormat.Text, Parse("", new byte[0]));
            Assert.Equal(MessageFormat.Bytes, Parse(null, new byte[] { 0xff, 0xfe, 0x00 }));
        }

        [Theory]
        [InlineData("text/plain")]
        [InlineData("TEXT/PLAIN; charset=\"UTF-8\"")]
        [InlineData("text/csv; charset=us-ascii")]
        public void TextOfAnyKindInUtf8IsText(string contentType) =>
            Assert.Equal(MessageFormat.Text, Parse(contentType, Encoding.UTF8.GetBytes("a,b")));

        [Theory]
        [InlineData("application/json; charset=utf-8")]
        [InlineData("application/problem+json")]
        [InlineData("text/json")]
        public void JsonOfAnyKindIsJson(string contentType) =>
            Assert.Equal(MessageFormat.Json, Parse(contentType, Encoding.UTF8.GetBytes("{}")));

        [Fact]
        public void TextInLatin1IsReencodedAsUtf8()
        {
            byte[] body = { (byte)'c', 0xE9 }; // "cé" in ISO-8859-1
            Assert.Equal(MessageFormat.Text, ContentTypes.Parse("text/plain; charset=iso-8859-1", null, ref body));
            Assert.Equal("cé", Encoding.UTF8.GetString(body));
        }

        [Fact]
        public void TextThatIsNotWhatItsCharsetSaysStaysBytes()
        {
            Assert.Equal(MessageFormat.Bytes, Parse("text/plain; charset=utf-8", new byte[] { 0xC3 }));
            Assert.Equal(MessageFormat.Bytes, Parse("text/plain; charset=no-such-charset", Encoding.UTF8.GetBytes("x")));
        }

        [Theory]
        [InlineData("application/xml")]
        [InlineData("image/png")]
        public void OtherTypesAreBytes(string contentType) =>
            Assert.Equal(MessageFormat.Bytes, Parse(contentType, Encoding.UTF8.GetBytes("<a/>")));

        [Fact]
        public void ACompressedBodyIsBytesWhateverItsType() =>
            Assert.Equal(MessageFormat.Bytes, Parse("text/plain", Encoding.UTF8.GetBytes("x"), encoding: "gzip"));
    }
}
