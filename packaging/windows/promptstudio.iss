; Inno Setup 6 script for PromptStudio on Windows (cannot be built on the Linux build machine).
;
; 1. In a Windows x64 "Developer PowerShell for VS 2022" (MSVC and CMake are needed to
;    compile llama-cpp-python), with Python 3.11 from python.org:
;        py -3.11 packaging\build.py
;    It builds dist\PromptStudio\ (PromptStudio.exe, _internal\, models\) with llama.cpp
;    compiled for any AVX2 CPU (-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON).
; 2. Then:   iscc packaging\windows\promptstudio.iss
;    which writes dist\PromptStudio-<version>-windows-x64-setup.exe.
; 3. Sign both PromptStudio.exe (before step 2) and the setup program (after it), e.g.
;        signtool sign /fd sha256 /tr http://timestamp.digicert.com /td sha256 /a FILE
;    Unsigned programs make SmartScreen warn "Windows protected your PC".
;
; The app installs per user by default (no administrator rights needed) into
; %LOCALAPPDATA%\Programs\PromptStudio; projects and logs live in %LOCALAPPDATA%\PromptStudio
; and are kept on uninstall.

#define AppName "PromptStudio"
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define Root "..\.."

[Setup]
AppId={{6C1E4F0B-7F7B-4E59-9D0A-5B2B8E3C1A77}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=PromptStudio
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\dist
OutputBaseFilename={#AppName}-{#AppVersion}-windows-x64-setup
SetupIconFile={#Root}\resources\icons\promptstudio.ico
UninstallDisplayIcon={app}\PromptStudio.exe
; The model is already compressed; LZMA gains little on it and costs minutes.
Compression=lzma2/normal
SolidCompression=no
WizardStyle=modern

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#Root}\dist\PromptStudio\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\PromptStudio.exe"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\PromptStudio.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\PromptStudio.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent
