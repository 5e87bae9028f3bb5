using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Text;

namespace PsIpc
{
    /// <summary>
    /// -Encoding as PowerShell's own cmdlets take it (Get-Content, Set-Content, Out-File): a name (utf8, ascii,
    /// unicode, utf32, bigendianunicode, bigendianutf32, latin1, ansi, oem, or any name .NET knows, such as
    /// windows-1252), a code page number, or a System.Text.Encoding. Windows PowerShell 5.1's PowerShellStandard
    /// has no ArgumentToEncodingTransformation of its own to reuse, hence this one.
    /// </summary>
    public sealed class EncodingTransformationAttribute : ArgumentTransformationAttribute
    {
        /// <summary>The names offered by completion, in PowerShell's spelling.</summary>
        internal static readonly string[] Names =
        {
            "ansi", "ascii", "bigendianunicode", "bigendianutf32", "latin1", "oem", "unicode", "utf32", "utf8",
        };

        public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
        {
            object value = inputData is PSObject pso ? pso.BaseObject : inputData;
            switch (value)
            {
                case Encoding encoding:
                    return encoding;
                case int codePage:
                    return FromCodePage(codePage);
                case string text:
                    return FromName(text);
                default:
                    return inputData; // the binder says what it cannot convert
            }
        }

        // PowerShell's names (Get-Content -Encoding), as they are spelled there; case does not matter.
        private static readonly Dictionary<string, Func<Encoding>> s_byName = new Dictionary<string, Func<Encoding>>(StringComparer.OrdinalIgnoreCase)
        {
            ["utf8"] = () => new UTF8Encoding(false),
            ["utf8NoBOM"] = () => new UTF8Encoding(false),
            ["utf8BOM"] = () => new UTF8Encoding(true),
            ["ascii"] = () => Encoding.ASCII,
            ["unicode"] = () => Encoding.Unicode,
            ["bigendianunicode"] = () => Encoding.BigEndianUnicode,
            ["utf32"] = () => Encoding.UTF32,
            ["bigendianutf32"] = () => new UTF32Encoding(bigEndian: true, byteOrderMark: true),
            ["latin1"] = () => FromCodePage(28591),
            ["ansi"] = () => FromCodePage(CultureInfo.CurrentCulture.TextInfo.ANSICodePage),
            ["oem"] = () => FromCodePage(CultureInfo.CurrentCulture.TextInfo.OEMCodePage),
        };

        internal static Encoding FromName(string name)
        {
            string trimmed = name.Trim();
            if (s_byName.TryGetValue(trimmed, out Func<Encoding>? make)) return make();
            if (int.TryParse(trimmed, NumberStyles.Integer, CultureInfo.InvariantCulture, out int codePage)) return FromCodePage(codePage);
            try
            {
                return Encoding.GetEncoding(trimmed);
            }
            catch (ArgumentException e)
            {
                throw Unknown($"'{name}'", e);
            }
        }

        private static Encoding FromCodePage(int codePage)
        {
            try
            {
                return Encoding.GetEncoding(codePage);
            }
            catch (Exception e) when (e is ArgumentException || e is NotSupportedException)
            {
                throw Unknown($"the code page {codePage}", e);
            }
        }

        private static ArgumentTransformationMetadataException Unknown(string what, Exception inner) =>
            new ArgumentTransformationMetadataException(
                $"{what} is not an encoding this system knows. Use {string.Join(", ", Names)}, a code page number or an encoding name such as windows-1252.",
                inner);
    }

    /// <summary>Tab completion of -Encoding: PowerShell's encoding names.</summary>
    public sealed class EncodingNameCompleter : IArgumentCompleter
    {
        public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete,
            CommandAst commandAst, IDictionary fakeBoundParameters)
        {
            var pattern = WildcardPattern.Get((wordToComplete ?? string.Empty).Trim('\'', '"') + "*", WildcardOptions.IgnoreCase);
            return EncodingTransformationAttribute.Names.Where(n => pattern.IsMatch(n))
                .Select(n => new CompletionResult(n, n, CompletionResultType.ParameterValue, n));
        }
    }
}
